//! Notifications: a Slack-compatible webhook POST for every closed incident,
//! when `ANTIBODY_WEBHOOK_URL` is set.
//!
//! Delivery retries connection errors, timeouts, 429 and 5xx with
//! exponential backoff and full jitter, and gives up on other 4xx at once
//! (retrying a rejected payload cannot help). It runs in its own task, so a
//! slow webhook never holds an incident open.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use crate::protocol::{Backoff, IncidentStatus, Severity};

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// The incident.
    pub incident_id: Uuid,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: Severity,
    /// How it ended.
    pub status: IncidentStatus,
    /// One line: the status-page entry.
    pub summary: String,
}

impl Notification {
    /// The Slack incoming-webhook body: `text` for clients that show only
    /// that, and blocks for the rest.
    pub fn slack_body(&self) -> serde_json::Value {
        let emoji = match self.status {
            IncidentStatus::Resolved => ":white_check_mark:",
            IncidentStatus::Active => ":rotating_light:",
            IncidentStatus::Advised => ":memo:",
            IncidentStatus::Watching => ":eyes:",
            IncidentStatus::Failed | IncidentStatus::Interrupted => ":x:",
        };
        json!({
            "text": format!("{emoji} [{}] {}: {}", self.status.as_str(), self.title, self.summary),
            "blocks": [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": format!(
                            "{emoji} *{}*\n*Severity:* {} · *Status:* {}",
                            self.title,
                            self.severity.as_str(),
                            self.status.as_str()
                        ),
                    },
                },
                { "type": "section", "text": { "type": "mrkdwn", "text": self.summary } },
                {
                    "type": "context",
                    "elements": [{ "type": "mrkdwn", "text": format!("incident `{}`", self.incident_id) }],
                },
            ],
        })
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt, doubled after each.
    pub base: Duration,
    /// The longest backoff.
    pub cap: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// How its retries back off.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.base,
            cap: self.cap,
        }
    }
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the webhook refused the notification with HTTP {status}; not retried")]
    Rejected { status: u16 },
    #[error("the webhook failed {attempts} times; last: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// Sends notifications to one webhook. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// Where to POST.
    url: reqwest::Url,
    /// The HTTP client (connection pool shared by clones).
    client: reqwest::Client,
    /// How hard to try.
    policy: RetryPolicy,
}

impl Webhook {
    pub fn new(url: reqwest::Url, policy: RetryPolicy) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self { url, client, policy })
    }

    /// Delivers `notification`; the number of attempts it took.
    pub async fn send(&self, notification: &Notification) -> Result<u32, NotifyError> {
        let body = notification.slack_body();
        let mut last = String::new();
        for attempt in 1..=self.policy.attempts {
            let mut retry_after = None;
            match self.client.post(self.url.clone()).json(&body).send().await {
                Ok(response) if response.status().is_success() => return Ok(attempt),
                Ok(response) => {
                    let status = response.status();
                    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                        return Err(NotifyError::Rejected {
                            status: status.as_u16(),
                        });
                    }
                    retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    last = format!("HTTP {}", status.as_u16());
                }
                Err(error) => last = error.to_string(),
            }
            if attempt < self.policy.attempts {
                let unit: f64 = StdRng::from_os_rng().random();
                let jittered = self.policy.backoff().wait(attempt - 1, unit);
                let wait = retry_after.map_or(jittered, |after| after.min(self.policy.cap));
                tokio::time::sleep(wait).await;
            }
        }
        Err(NotifyError::GaveUp {
            attempts: self.policy.attempts,
            last,
        })
    }

    /// Sends in the background, logging the outcome.
    pub fn spawn(&self, notification: Notification) {
        let webhook = self.clone();
        tokio::spawn(async move {
            match webhook.send(&notification).await {
                Ok(attempts) => info!(incident = %notification.incident_id, attempts, "webhook notified"),
                Err(error) => warn!(incident = %notification.incident_id, %error, "webhook notification failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    };

    use axum::{Json, Router, extract::State, http::StatusCode, routing::post};

    use super::*;

    fn notification() -> Notification {
        Notification {
            incident_id: Uuid::nil(),
            title: "Database Cascade".into(),
            severity: Severity::Critical,
            status: IncidentStatus::Resolved,
            summary: "Root cause remedied.".into(),
        }
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            timeout: Duration::from_millis(300),
        }
    }

    /// A webhook that answers with `statuses` in turn (then the last one),
    /// recording every body.
    async fn mock(statuses: Vec<u16>) -> (reqwest::Url, Arc<AtomicU32>, Arc<Mutex<Vec<serde_json::Value>>>) {
        #[derive(Clone)]
        struct Mock {
            statuses: Arc<Vec<u16>>,
            calls: Arc<AtomicU32>,
            bodies: Arc<Mutex<Vec<serde_json::Value>>>,
        }
        async fn hook(State(m): State<Mock>, Json(body): Json<serde_json::Value>) -> StatusCode {
            let call = m.calls.fetch_add(1, Ordering::SeqCst) as usize;
            m.bodies.lock().unwrap().push(body);
            let status = m.statuses[call.min(m.statuses.len() - 1)];
            if status == 0 {
                // Slower than the client's timeout.
                tokio::time::sleep(Duration::from_secs(2)).await;
                return StatusCode::OK;
            }
            StatusCode::from_u16(status).unwrap()
        }
        let state = Mock {
            statuses: Arc::new(statuses),
            calls: Arc::default(),
            bodies: Arc::default(),
        };
        let (calls, bodies) = (state.calls.clone(), state.bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let app = Router::new().route("/hook", post(hook)).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, calls, bodies)
    }

    #[tokio::test]
    async fn a_slack_shaped_body_is_delivered_once() {
        let (url, calls, bodies) = mock(vec![200]).await;
        let attempts = Webhook::new(url, quick()).unwrap().send(&notification()).await.unwrap();
        assert_eq!((attempts, calls.load(Ordering::SeqCst)), (1, 1));
        let body = bodies.lock().unwrap()[0].clone();
        assert!(body["text"].as_str().unwrap().contains("Database Cascade"));
        assert_eq!(body["blocks"][0]["type"], "section");
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_success() {
        let (url, calls, _) = mock(vec![500, 503, 200]).await;
        let attempts = Webhook::new(url, quick()).unwrap().send(&notification()).await.unwrap();
        assert_eq!((attempts, calls.load(Ordering::SeqCst)), (3, 3));
    }

    #[tokio::test]
    async fn a_rejected_payload_is_not_retried() {
        let (url, calls, _) = mock(vec![400]).await;
        let err = Webhook::new(url, quick())
            .unwrap()
            .send(&notification())
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::Rejected { status: 400 }), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failing_webhook_is_given_up_after_every_attempt() {
        let (url, calls, _) = mock(vec![503]).await;
        let err = Webhook::new(url, quick())
            .unwrap()
            .send(&notification())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("failed 4 times; last: HTTP 503"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_slow_webhook_times_out_and_is_retried() {
        let (url, calls, _) = mock(vec![0, 200]).await;
        let attempts = Webhook::new(url, quick()).unwrap().send(&notification()).await.unwrap();
        assert_eq!((attempts, calls.load(Ordering::SeqCst)), (2, 2));
    }
}
