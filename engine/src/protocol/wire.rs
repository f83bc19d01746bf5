//! Reading an [`Envelope`] without buffering it.
//!
//! On the wire a message's fields sit beside `seq`, `ts` and its `type` tag.
//! serde's derive reads such an internally tagged, flattened enum by first
//! copying the whole object into an intermediate tree, then reading every
//! field type a second time out of that tree. In the browser that doubles
//! the code of every protocol type's decoder (it was 140 KB of the wasm) and the
//! work of every frame. Here the envelope is read as it streams: once `type`
//! is known, the message's own fields go straight to their types.
//!
//! The server always writes `type` before the message's fields, but JSON
//! does not promise an order (a `serde_json::Value` sorts its keys), so any
//! field that arrives before `type` is kept as raw JSON text and read when
//! the type is known, with the same reader.
//!
//! [`server_messages!`] wraps the [`ServerMessage`] definition, so each
//! variant's fields are written once and also get a plain struct to be read
//! into.

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ActionDetails, Envelope, ServerMessage, findings::legacy_kind};

/// Defines the message enum as written, and
/// `ServerMessage::from_fields(kind, fields)`, which reads the fields of the
/// message whose wire `type` is `kind` from any map-shaped deserializer.
macro_rules! server_messages {
    (
        $(#[$enum_meta:meta])*
        pub enum $Enum:ident {
            $(
                $(#[$variant_meta:meta])*
                $Variant:ident {
                    $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        pub enum $Enum {
            $(
                $(#[$variant_meta])*
                $Variant { $( $(#[$field_meta])* $field: $ty ),* },
            )*
        }

        impl $Enum {
            /// Reads the fields of the `kind` message (its snake_case wire
            /// `type`) from `fields`, a map without the tag.
            pub(crate) fn from_fields<'de, D: serde::Deserializer<'de>>(
                kind: &str,
                fields: D,
            ) -> Result<Self, D::Error> {
                $(
                    if $crate::protocol::wire::is_snake_case_of(kind, stringify!($Variant)) {
                        #[derive(serde::Deserialize)]
                        struct Fields { $( $(#[$field_meta])* $field: $ty ),* }
                        let Fields { $($field),* } = serde::Deserialize::deserialize(fields)?;
                        return Ok(Self::$Variant { $($field),* });
                    }
                )*
                Err(<D::Error as serde::de::Error>::custom(format_args!(
                    "unknown message type `{kind}`"
                )))
            }
        }
    };
}
pub(super) use server_messages;

/// Whether `snake` is `camel` in snake_case (`incident_created` for
/// `IncidentCreated`), without allocating.
pub(crate) fn is_snake_case_of(snake: &str, camel: &str) -> bool {
    let mut snake = snake.chars();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && snake.next() != Some('_') {
            return false;
        }
        if snake.next() != Some(c.to_ascii_lowercase()) {
            return false;
        }
    }
    snake.next().is_none()
}

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event envelope: seq, ts, type and the message's fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut stamp = Stamp::default();
        let mut kind: Option<String> = None;
        let mut early: Vec<(String, Box<RawValue>)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if stamp.take(&key, &mut map)? {
                continue;
            }
            if key != "type" {
                early.push((key, map.next_value()?));
            } else if early.is_empty() {
                // The server's order: the message streams straight to its types.
                let kind: String = map.next_value()?;
                let message = read_fields(&kind, &mut map, &mut stamp)?;
                return stamp.seal(message);
            } else {
                kind = Some(map.next_value()?);
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        // Out of order: the fields become an object of their own, read with
        // the reader (and so the decoders) the browser reads everything with.
        let object = reassemble(&early)?;
        let mut reader = serde_json::Deserializer::from_slice(object.as_bytes());
        let message = reader
            .deserialize_map(FieldsVisitor {
                kind: &kind,
                stamp: &mut stamp,
            })
            .map_err(de::Error::custom)?;
        stamp.seal(message)
    }
}

/// `fields` set apart as raw JSON, as one JSON object again.
fn reassemble<E: de::Error>(fields: &[(String, Box<RawValue>)]) -> Result<String, E> {
    let mut object = String::from("{");
    for (key, value) in fields {
        if object.len() > 1 {
            object.push(',');
        }
        object.push_str(&serde_json::to_string(key).map_err(E::custom)?);
        object.push(':');
        object.push_str(value.get());
    }
    object.push('}');
    Ok(object)
}

/// An action's details are read the same way as an envelope: once `kind`
/// is known, the rest goes straight to the payload's fields. Details
/// without a `kind` were written before payloads were typed; their kind is
/// inferred from their keys.
impl<'de> serde::Deserialize<'de> for ActionDetails {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DetailsVisitor)
    }
}

struct DetailsVisitor;

impl<'de> Visitor<'de> for DetailsVisitor {
    type Value = ActionDetails;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an action's details: an object tagged by `kind`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ActionDetails, A::Error> {
        let mut kind: Option<String> = None;
        let mut early: Vec<(String, Early)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key != "kind" || kind.is_some() {
                early.push((key, map.next_value()?));
                continue;
            }
            let tag: String = map.next_value()?;
            if early.is_empty() {
                // The server's order: the fields stream straight to their types.
                return ActionDetails::from_fields(&tag, de::value::MapAccessDeserializer::new(map));
            }
            kind = Some(tag);
        }
        let kind = match kind {
            Some(kind) => kind,
            None => {
                let keys: Vec<&str> = early.iter().map(|(key, _)| key.as_str()).collect();
                legacy_kind(&keys)
                    .ok_or_else(|| de::Error::missing_field("kind"))?
                    .to_owned()
            }
        };
        read_early(&kind, early)
    }
}

/// An action's fields that came before its `kind`. On the server they may
/// arrive through serde's buffered content (the store reads bare messages
/// with the derive), which raw JSON cannot be taken from; the browser reads
/// only JSON text, and raw JSON keeps a second set of decoders out of the
/// wasm.
#[cfg(feature = "runtime")]
type Early = serde_json::Value;
#[cfg(not(feature = "runtime"))]
type Early = Box<RawValue>;

/// Reads the `kind` payload from its fields set apart.
fn read_early<E: de::Error>(kind: &str, early: Vec<(String, Early)>) -> Result<ActionDetails, E> {
    #[cfg(feature = "runtime")]
    {
        let object: serde_json::Map<String, serde_json::Value> = early.into_iter().collect();
        ActionDetails::from_fields(kind, serde_json::Value::Object(object)).map_err(E::custom)
    }
    #[cfg(not(feature = "runtime"))]
    {
        let object = reassemble(&early)?;
        let mut reader = serde_json::Deserializer::from_slice(object.as_bytes());
        ActionDetails::from_fields(kind, &mut reader).map_err(E::custom)
    }
}

/// Reads the `kind` message's fields from the rest of `map`, taking out the
/// envelope's own fields if they follow.
fn read_fields<'de, A: MapAccess<'de>>(kind: &str, map: &mut A, stamp: &mut Stamp) -> Result<ServerMessage, A::Error> {
    ServerMessage::from_fields(kind, de::value::MapAccessDeserializer::new(Live { map, stamp }))
}

/// Reads a message's fields that were set apart because they came before
/// its `type`.
struct FieldsVisitor<'a> {
    /// The message's wire `type`.
    kind: &'a str,
    /// The envelope's own fields (already read).
    stamp: &'a mut Stamp,
}

impl<'de> Visitor<'de> for FieldsVisitor<'_> {
    type Value = ServerMessage;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a message's fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServerMessage, A::Error> {
        read_fields(self.kind, &mut map, self.stamp)
    }
}

/// The envelope's own fields, wherever in the object they come.
#[derive(Default)]
struct Stamp {
    /// `seq`, once read.
    seq: Option<u64>,
    /// `ts`, once read.
    ts: Option<chrono::DateTime<chrono::Utc>>,
}

impl Stamp {
    /// Reads the value of `key` if it is one of the envelope's own fields.
    fn take<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "seq" if self.seq.is_none() => self.seq = Some(map.next_value()?),
            "ts" if self.ts.is_none() => self.ts = Some(map.next_value()?),
            "seq" | "ts" => return Err(de::Error::custom(format_args!("duplicate field `{key}`"))),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The envelope, once the whole object is read.
    fn seal<E: de::Error>(self, message: ServerMessage) -> Result<Envelope, E> {
        let seq = self.seq.ok_or_else(|| E::missing_field("seq"))?;
        let ts = self.ts.ok_or_else(|| E::missing_field("ts"))?;
        Ok(Envelope { seq, ts, message })
    }
}

/// The rest of the object after `type`, less the envelope's own fields.
struct Live<'a, A> {
    /// The object being read.
    map: &'a mut A,
    /// Where `seq` and `ts` go if they follow `type`.
    stamp: &'a mut Stamp,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Live<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if !self.stamp.take(&key, self.map)? {
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::protocol::{ActionStatus, AgentAction, AgentType, IncidentStatus, Snapshot};

    fn at(seq: u64, message: ServerMessage) -> Envelope {
        Envelope {
            seq,
            ts: "2026-11-22T10:30:45.123Z".parse().unwrap(),
            message,
        }
    }

    fn samples() -> Vec<Envelope> {
        let action = AgentAction {
            agent_type: AgentType::Diagnosis,
            action_id: Uuid::from_u128(2),
            description: "Correlating \"latency\" with deploys".into(),
            timestamp: "2026-11-22T10:30:44Z".parse().unwrap(),
            status: ActionStatus::Completed,
            details: crate::protocol::ActionDetails::Diagnosis(crate::protocol::Diagnosis {
                blast_radius: vec![crate::protocol::Affected {
                    service: "api-gateway".into(),
                    health: crate::protocol::HealthState::Degraded,
                    root: true,
                }],
                anomalous: vec!["api-gateway".into()],
                ..Default::default()
            }),
            duration_ms: Some(1200),
            confidence: Some(0.8),
            queries: Vec::new(),
        };
        let action = at(
            3,
            ServerMessage::AgentAction {
                incident_id: Uuid::from_u128(1),
                action,
            },
        );
        vec![
            action.clone(),
            at(
                4,
                ServerMessage::IncidentStatus {
                    incident_id: Uuid::from_u128(1),
                    status: IncidentStatus::Resolved,
                    resolution_time: Some(18.5),
                    cost_savings: None,
                    root_cause: Some("pool exhaustion".into()),
                    report: None,
                    time_to_detect: Some(2.0),
                    time_to_diagnose: None,
                },
            ),
            at(
                5,
                ServerMessage::MemoryCleared {
                    removed: 3,
                    by: "ops".into(),
                },
            ),
            at(
                6,
                ServerMessage::Snapshot {
                    snapshot: Snapshot {
                        last_seq: 5,
                        recent_events: vec![action],
                        ..Snapshot::default()
                    },
                },
            ),
        ]
    }

    fn read(text: &str) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }

    /// The envelope's JSON object with its keys in the given order.
    fn reordered(envelope: &Envelope, order: &[usize]) -> String {
        let serde_json::Value::Object(object) = serde_json::to_value(envelope).unwrap() else {
            unreachable!()
        };
        let entries: Vec<_> = object.into_iter().collect();
        let fields: Vec<String> = order
            .iter()
            .map(|&i| format!("{}:{}", serde_json::to_string(&entries[i].0).unwrap(), entries[i].1))
            .collect();
        format!("{{{}}}", fields.join(","))
    }

    #[test]
    fn an_envelope_reads_back_in_the_servers_order_and_from_a_sorted_value() {
        for envelope in samples() {
            let text = serde_json::to_string(&envelope).unwrap();
            assert!(
                text.starts_with(&format!("{{\"seq\":{},\"ts\":", envelope.seq)),
                "{text}"
            );
            assert_eq!(read(&text).unwrap(), envelope, "streamed: {text}");
            // A Value sorts its keys, so `type` comes after the message's fields.
            let sorted: Envelope = serde_json::from_value(serde_json::to_value(&envelope).unwrap()).unwrap();
            assert_eq!(sorted, envelope);
        }
    }

    proptest! {
        #[test]
        fn an_envelope_reads_back_whatever_the_order_of_its_keys(
            which in 0..4usize,
            keys in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle(),
        ) {
            let envelope = &samples()[which];
            let count = serde_json::to_value(envelope).unwrap().as_object().unwrap().len();
            prop_assert!(count <= 12);
            let order: Vec<usize> = keys.into_iter().filter(|&i| i < count).collect();
            let text = reordered(envelope, &order);
            prop_assert_eq!(&read(&text).unwrap(), envelope, "{}", text);
        }
    }

    #[test]
    fn every_message_type_is_known_by_its_wire_name() {
        let kinds = [
            "incident_created",
            "agent_action",
            "incident_status",
            "performance_metrics",
            "consensus",
            "swarm_stats",
            "twin_health",
            "config_change",
            "timeline_progress",
            "policy_decision",
            "approval_requested",
            "approval_decided",
            "memory_recorded",
            "memory_cleared",
            "resync",
            "snapshot",
        ];
        for kind in kinds {
            let error = read(&format!(r#"{{"seq":1,"ts":"2026-11-22T10:30:45Z","type":"{kind}"}}"#)).unwrap_err();
            assert!(error.to_string().starts_with("missing field"), "{kind}: {error}");
        }
    }

    #[test]
    fn a_bad_envelope_is_refused_with_the_reason() {
        let ts = r#""ts":"2026-11-22T10:30:45Z""#;
        let cases = [
            (format!(r#"{{"seq":1,{ts},"reason":"lag"}}"#), "missing field `type`"),
            (
                format!(r#"{{"seq":1,{ts},"type":"bogus","reason":"lag"}}"#),
                "unknown message type `bogus`",
            ),
            (
                format!(r#"{{{ts},"type":"resync","reason":"lag"}}"#),
                "missing field `seq`",
            ),
            (
                r#"{"seq":1,"type":"resync","reason":"lag"}"#.to_string(),
                "missing field `ts`",
            ),
            (
                format!(r#"{{"seq":1,{ts},"type":"resync","seq":2,"reason":"lag"}}"#),
                "duplicate field `seq`",
            ),
            (
                format!(r#"{{"seq":1,{ts},"type":"resync","reason":5}}"#),
                "invalid type: integer `5`",
            ),
            (
                format!(r#"{{"seq":1,{ts},"reason":5,"type":"resync"}}"#),
                "invalid type: integer `5`",
            ),
            (
                format!(r#"{{"seq":"one",{ts},"type":"resync","reason":"lag"}}"#),
                "invalid type: string \"one\"",
            ),
            (r#"[1,2]"#.to_string(), "invalid type: sequence"),
        ];
        for (text, reason) in cases {
            let error = read(&text).unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn snake_case_matches_whole_names_only() {
        assert!(is_snake_case_of("incident_created", "IncidentCreated"));
        assert!(is_snake_case_of("resync", "Resync"));
        assert!(!is_snake_case_of("incidentcreated", "IncidentCreated"));
        assert!(!is_snake_case_of("incident_create", "IncidentCreated"));
        assert!(!is_snake_case_of("incident_created_", "IncidentCreated"));
        assert!(!is_snake_case_of("Incident_created", "IncidentCreated"));
        assert!(!is_snake_case_of("", "Resync"));
    }
}
