//! Alerts in: a checked delivery becomes incidents on the desk's say, all
//! under the desk's lock, so two deliveries of one alert never open two.

use chrono::Utc;
use uuid::Uuid;

use super::{Engine, SubmitError};
use crate::{
    intake::{Alert, desk::Placement},
    protocol::{AlertPlacement, IncidentStatus, ServerMessage},
    request::{IncidentRequest, IncidentTitle, MAX_TITLE_CHARS, ServiceName},
};

/// What became of a delivery.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertReceipt {
    /// Alerts in the delivery.
    pub alerts: usize,
    /// Incidents the delivery opened.
    pub opened: Vec<Uuid>,
    /// Open incidents that firing alerts joined (one entry per alert).
    pub joined: Vec<Uuid>,
    /// Alerts already placed (redeliveries).
    pub duplicates: usize,
    /// Resolved alerts.
    pub resolved: usize,
}

impl Engine {
    /// Places a delivery's alerts: redeliveries are recognised, alerts
    /// close to an open alert-sourced incident join it, and the rest open
    /// one incident per cluster of related services. The incidents it
    /// opens are stored before it answers when the caller awaits
    /// [`Engine::stored`].
    pub fn receive_alerts(&self, alerts: &[Alert]) -> Result<AlertReceipt, SubmitError> {
        let topology = self.topology();
        let now = Utc::now();
        let mut desk = self.shared.desk.lock().expect("alert desk lock poisoned");
        let is_open = |id: Uuid| self.incident(id).is_some_and(|i| i.status == IncidentStatus::Active);
        let placements = desk.place(alerts, now, topology, &self.shared.correlation, is_open);
        let mut receipt = AlertReceipt {
            alerts: alerts.len(),
            ..AlertReceipt::default()
        };
        let clusters = placements.iter().filter_map(|p| match p {
            Placement::New(n) => Some(*n + 1),
            _ => None,
        });
        for cluster in 0..clusters.max().unwrap_or(0) {
            let members: Vec<&Alert> = (alerts.iter().zip(&placements))
                .filter(|(_, p)| **p == Placement::New(cluster))
                .map(|(a, _)| a)
                .collect();
            let incident = self.open_incident(request_for(&members)?)?;
            desk.opened(incident.id, &members, topology, now);
            for alert in members {
                self.record_alert(incident.id, alert, AlertPlacement::Opened);
            }
            receipt.opened.push(incident.id);
        }
        for (alert, placement) in alerts.iter().zip(placements) {
            match placement {
                Placement::Duplicate(_) => receipt.duplicates += 1,
                Placement::Joined(id) => {
                    self.record_alert(id, alert, AlertPlacement::Joined);
                    receipt.joined.push(id);
                }
                Placement::Resolved(incident) => {
                    if let Some(id) = incident {
                        // A resolution may carry only its key (PagerDuty's):
                        // the record names the alert as it fired.
                        let mut alert = alert.clone();
                        if let Some(placed) = desk.placed(&alert.fingerprint) {
                            alert.name.clone_from(&placed.record.name);
                            alert.service.clone_from(&placed.record.service);
                        }
                        self.record_alert(id, &alert, AlertPlacement::Resolved);
                    }
                    receipt.resolved += 1;
                }
                Placement::New(_) => {}
            }
        }
        Ok(receipt)
    }

    /// Puts `alert` on `incident`'s record.
    fn record_alert(&self, incident: Uuid, alert: &Alert, placement: AlertPlacement) {
        self.shared.log.append(ServerMessage::AlertReceived {
            incident_id: incident,
            alert: alert.record(placement),
        });
    }
}

/// The incident a cluster of related alerts opens: the most severe one's
/// summary and severity, every service they name.
fn request_for(alerts: &[&Alert]) -> Result<IncidentRequest, SubmitError> {
    let lead = alerts
        .iter()
        .max_by_key(|a| a.severity)
        .expect("a cluster has at least one alert");
    let mut title = lead.summary.clone();
    if alerts.len() > 1 {
        title.push_str(&format!(" (+{} related)", alerts.len() - 1));
    }
    let title: String = title
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TITLE_CHARS)
        .collect();
    let mut services: Vec<&str> = alerts.iter().map(|a| a.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let affected_services = services
        .iter()
        .map(|s| ServiceName::parse(s, "labels.service"))
        .collect::<Result<_, _>>()
        .map_err(|e| SubmitError::Invalid(e.to_string()))?;
    Ok(IncidentRequest {
        title: IncidentTitle::parse(&title).map_err(|e| SubmitError::Invalid(e.to_string()))?,
        severity: lead.severity,
        affected_services,
        scenario_id: None,
    })
}
