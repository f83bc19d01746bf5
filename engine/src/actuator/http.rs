//! The actuator that sends orders over HTTP: to the standalone twin's
//! actions API, or as a webhook to a runbook system. One engine for both;
//! the estate's [`ActuatorMap`] says where orders go and how the outcome
//! comes back.
//!
//! Delivery retries a network error, a timeout, 408, 429 and 5xx with the
//! one backoff (full jitter), every try with the same `Idempotency-Key`;
//! any other 4xx fails the step at once. The outcome is the answer's, the
//! status URL's, or the signed callback's, and none before the step's
//! timeout means the step failed.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::{Callbacks, Learn, Signer, map::ActuatorMap, signing::SIGNATURE_HEADER};
use crate::protocol::{ActionOrder, ActionOutcome, ActionReceipt, ActuatorRequest, Backoff, ConfigChangeEvent};

/// Between deliveries of one order.
const DELIVERY_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(500),
    cap: Duration::from_secs(8),
};
/// The longest one delivery (or one status read) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// The actuator's settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Which requests remediations become, and how outcomes come back.
    pub map: ActuatorMap,
    /// The receiver's URL (`$base`).
    pub base: Url,
    /// Signs orders and checks callbacks; unsigned without it.
    pub signer: Option<Signer>,
    /// Antibody's own URL as receivers reach it, for `callback_url`.
    pub public_url: Option<Url>,
}

/// A cheap-to-clone handle to an HTTP actuator.
#[derive(Clone)]
pub struct HttpActuator {
    inner: std::sync::Arc<Inner>,
}

impl std::fmt::Debug for HttpActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = &self.inner.settings;
        (f.debug_struct("HttpActuator"))
            .field("name", &settings.map.name)
            .field("base", &settings.base.as_str())
            .finish()
    }
}

struct Inner {
    settings: HttpSettings,
    client: reqwest::Client,
    /// Steps waiting for a callback.
    callbacks: Callbacks,
}

/// What delivering an order came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The final receipt (its status succeeded or failed), or the last one
    /// known when the outcome never came.
    pub receipt: Option<ActionReceipt>,
    /// Deliveries tried.
    pub attempts: u32,
    /// Why the step failed, when it did.
    pub failure: Option<String>,
}

/// One delivery's result.
enum Sent {
    Answered(ActionReceipt),
    /// Worth another try.
    Transient(String),
    /// Not worth another try.
    Refused(String),
}

impl HttpActuator {
    pub fn new(settings: HttpSettings) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("antibody/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        Self {
            inner: std::sync::Arc::new(Inner {
                settings,
                client,
                callbacks: Callbacks::default(),
            }),
        }
    }

    /// What the receiver is, as records name it.
    pub fn name(&self) -> &str {
        &self.inner.settings.map.name
    }

    /// The signer, to check callbacks with.
    pub fn signer(&self) -> Option<&Signer> {
        self.inner.settings.signer.as_ref()
    }

    /// The steps waiting for a callback.
    pub fn callbacks(&self) -> &Callbacks {
        &self.inner.callbacks
    }

    /// The exact request `order` becomes, sent under `key`.
    pub fn plan(&self, mut order: ActionOrder, key: &str) -> ActuatorRequest {
        let settings = &self.inner.settings;
        let incident = order.incident_id.map(|id| id.to_string()).unwrap_or_default();
        order.parameters = (settings.map).parameters(order.remediation.kind, &order.remediation.target, &incident);
        order.callback_url = (settings.map.outcome == Learn::Callback)
            .then_some(settings.public_url.as_ref())
            .flatten()
            .map(|url| format!("{}/api/actions/{key}/result", url.as_str().trim_end_matches('/')));
        ActuatorRequest {
            actuator: settings.map.name.clone(),
            method: "POST".into(),
            url: self.url(&settings.map.url, None),
            idempotency_key: key.to_owned(),
            body: order,
        }
    }

    fn url(&self, template: &str, receipt: Option<&str>) -> String {
        let base = self.inner.settings.base.as_str().trim_end_matches('/');
        let receipt = receipt
            .map(|r| percent_encoding::utf8_percent_encode(r, percent_encoding::NON_ALPHANUMERIC).to_string())
            .unwrap_or_default();
        template.replace("$base", base).replace("$receipt", &receipt)
    }

    /// Sends `request` and learns its outcome, within the step's timeout.
    pub async fn execute(&self, request: &ActuatorRequest) -> Delivery {
        let deadline = Instant::now() + self.inner.settings.map.timeout;
        // Registered before the order leaves, so a quick result finds it.
        let mut awaited = (self.inner.settings.map.outcome == Learn::Callback)
            .then(|| self.inner.callbacks.expect(&request.idempotency_key));
        if awaited.is_some() {
            self.inner.callbacks.announce(&request.idempotency_key).await;
        }
        let mut delivery = Delivery {
            receipt: None,
            attempts: 0,
            failure: None,
        };
        let key = &request.idempotency_key;
        let receipt = match self
            .deliver(&request.url, key, request, deadline, &mut delivery.attempts)
            .await
        {
            Ok(receipt) => receipt,
            Err(failure) => {
                delivery.failure = Some(failure);
                return delivery;
            }
        };
        let outcome = match receipt.status {
            ActionOutcome::Pending => self.learn(receipt.clone(), awaited.as_mut(), deadline).await,
            _ => Ok(receipt.clone()),
        };
        match outcome {
            Ok(receipt) => {
                if receipt.status == ActionOutcome::Failed {
                    let detail = receipt.detail.clone().unwrap_or_else(|| "no detail".into());
                    delivery.failure = Some(format!("the {} reports the step failed: {detail}", self.name()));
                }
                delivery.receipt = Some(receipt);
            }
            Err(reason) => {
                delivery.receipt = Some(receipt);
                delivery.failure = Some(reason);
            }
        }
        delivery
    }

    /// Delivers `request`'s order to `url` under `key` until it is answered,
    /// refused, out of attempts or past `deadline`, counting `attempts`.
    async fn deliver(
        &self,
        url: &str,
        key: &str,
        request: &ActuatorRequest,
        deadline: Instant,
        attempts: &mut u32,
    ) -> Result<ActionReceipt, String> {
        let body = serde_json::to_vec(&request.body).expect("an order serializes");
        loop {
            *attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let reason = match self.send(url, key, &body, request, left).await {
                Sent::Answered(receipt) => return Ok(receipt),
                Sent::Refused(reason) => return Err(reason),
                Sent::Transient(reason) => reason,
            };
            let wait = DELIVERY_BACKOFF.wait(*attempts - 1, jitter());
            if *attempts >= self.inner.settings.map.attempts || Instant::now() + wait >= deadline {
                return Err(format!("{reason} (after {attempts} attempt(s))"));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One delivery of an order (or an undo).
    async fn send(&self, url: &str, key: &str, body: &[u8], request: &ActuatorRequest, left: Duration) -> Sent {
        let mut builder = (self.inner.client.post(url))
            .timeout(left.min(REQUEST_TIMEOUT))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            .body(body.to_vec());
        if let Some(signer) = &self.inner.settings.signer {
            builder = builder.header(SIGNATURE_HEADER, signer.sign(chrono::Utc::now().timestamp(), body));
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Sent::Transient(format!("{url} did not answer in time")),
            Err(error) => return Sent::Transient(format!("{url} could not be reached: {}", root_cause(&error))),
        };
        let status = response.status();
        let text = read_capped(response).await;
        if status.is_success() {
            return Sent::Answered(receipt_from(&text, request));
        }
        let said = summary(&text);
        if status.is_server_error() || matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS) {
            Sent::Transient(format!("{url} answered {status}: {said}"))
        } else {
            Sent::Refused(format!("{url} refused the order with {status}: {said}"))
        }
    }

    /// Waits for a pending order's outcome: the callback, or the status URL.
    async fn learn(
        &self,
        receipt: ActionReceipt,
        awaited: Option<&mut super::callbacks::Awaited>,
        deadline: Instant,
    ) -> Result<ActionReceipt, String> {
        let timeout = self.inner.settings.map.timeout.as_secs();
        let no_outcome = || format!("no outcome from the {} within the step's {timeout} s", self.name());
        if let Some(awaited) = awaited {
            return match tokio::time::timeout_at(deadline, awaited.result()).await {
                Ok(Some(result)) => Ok(ActionReceipt {
                    status: result.status.into(),
                    detail: result.detail,
                    ..receipt
                }),
                Ok(None) | Err(_) => Err(no_outcome()),
            };
        }
        if self.inner.settings.map.status_url.is_none() {
            return Err(format!(
                "the {} answered `pending` and has no status URL to read",
                self.name()
            ));
        }
        loop {
            if Instant::now() + self.inner.settings.map.poll >= deadline {
                return Err(no_outcome());
            }
            tokio::time::sleep(self.inner.settings.map.poll).await;
            if let Ok(now) = self.status(&receipt).await
                && now.status != ActionOutcome::Pending
            {
                return Ok(now);
            }
        }
    }

    /// Reads a receipt's status from the status URL, once.
    pub async fn status(&self, receipt: &ActionReceipt) -> Result<ActionReceipt, String> {
        let template = (self.inner.settings.map.status_url.as_deref())
            .ok_or_else(|| format!("the {} has no status URL", self.name()))?;
        let url = self.url(template, Some(&receipt.id));
        let response = (self.inner.client.get(&url).send().await).map_err(|e| root_cause(&e))?;
        let status = response.status();
        let text = read_capped(response).await;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {}", summary(&text)));
        }
        let answer = Answer::read(&text);
        Ok(ActionReceipt {
            status: answer.status.unwrap_or(receipt.status),
            detail: answer.detail.or_else(|| receipt.detail.clone()),
            changes: if answer.changes.is_empty() {
                receipt.changes.clone()
            } else {
                answer.changes
            },
            ..receipt.clone()
        })
    }

    /// Takes back what `receipt` did, through the undo URL: once, since the
    /// undo carries its own idempotency key.
    pub async fn undo(&self, receipt: &ActionReceipt, request: &ActuatorRequest) -> Result<ActionReceipt, String> {
        let template = (self.inner.settings.map.undo_url.as_deref()).ok_or_else(|| {
            format!(
                "the {} cannot undo (its map has no undo_url); left in place",
                self.name()
            )
        })?;
        let url = self.url(template, Some(&receipt.id));
        let key = format!("{}-undo", request.idempotency_key);
        let deadline = Instant::now() + self.inner.settings.map.timeout;
        let answer = self.deliver(&url, &key, request, deadline, &mut 0).await?;
        let status = match answer.status {
            ActionOutcome::Failed => ActionOutcome::Failed,
            _ => ActionOutcome::Undone,
        };
        Ok(ActionReceipt {
            id: receipt.id.clone(),
            idempotency_key: key,
            status,
            ..answer
        })
    }
}

/// What a receiver's answer may say; anything else in it is ignored, so
/// any runbook system's answer reads.
#[derive(Default)]
struct Answer {
    id: Option<String>,
    status: Option<ActionOutcome>,
    detail: Option<String>,
    changes: Vec<ConfigChangeEvent>,
    side_effects: Vec<String>,
}

impl Answer {
    fn read(text: &str) -> Self {
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text) else {
            return Self::default();
        };
        let id = match fields.get("id") {
            Some(serde_json::Value::String(id)) => Some(id.clone()),
            Some(serde_json::Value::Number(id)) => Some(id.to_string()),
            _ => None,
        };
        let status = fields.get("status").and_then(|s| s.as_str()).map(outcome_of);
        let detail = fields.get("detail").and_then(|d| d.as_str()).map(str::to_owned);
        let changes = (fields.get("changes").cloned())
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        let side_effects = (fields.get("side_effects").cloned())
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        Self {
            id,
            status,
            detail,
            changes,
            side_effects,
        }
    }
}

/// A receiver's word for a status: Rundeck's, StackStorm's and ours.
fn outcome_of(status: &str) -> ActionOutcome {
    match status.to_ascii_lowercase().as_str() {
        "succeeded" | "success" | "successful" | "ok" | "completed" | "done" => ActionOutcome::Succeeded,
        "failed" | "failure" | "error" | "aborted" | "timedout" | "timed_out" | "canceled" | "cancelled" => {
            ActionOutcome::Failed
        }
        "undone" => ActionOutcome::Undone,
        _ => ActionOutcome::Pending,
    }
}

/// The receipt an answer gives: its id (or the key, for a receiver that
/// names none) and its status (pending when it says none).
fn receipt_from(text: &str, request: &ActuatorRequest) -> ActionReceipt {
    let answer = Answer::read(text);
    ActionReceipt {
        id: answer.id.unwrap_or_else(|| request.idempotency_key.clone()),
        idempotency_key: request.idempotency_key.clone(),
        remediation: request.body.remediation.clone(),
        status: answer.status.unwrap_or(ActionOutcome::Pending),
        detail: answer.detail,
        changes: answer.changes,
        side_effects: answer.side_effects,
    }
}

async fn read_capped(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER)]).into_owned()
}

/// An answer's gist for an error line: a problem's `detail`, or the start
/// of the text.
fn summary(text: &str) -> String {
    let detail = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned));
    let text = detail.unwrap_or_else(|| text.trim().to_owned());
    if text.is_empty() {
        return "(no body)".into();
    }
    text.chars().take(200).collect()
}

/// A uniform draw in [0, 1) for the backoff's full jitter.
fn jitter() -> f64 {
    StdRng::from_os_rng().random()
}

fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
