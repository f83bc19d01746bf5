//! A generator backed by any OpenAI-compatible chat-completions endpoint
//! (OpenAI, a local Ollama or llama.cpp server): `ANTIBODY_LLM_URL`,
//! `ANTIBODY_LLM_MODEL`, `ANTIBODY_LLM_API_KEY`.
//!
//! It asks for seed 004's scenario JSON, and trusts none of it: the reply
//! must parse into [`ScenarioSpec`] with no unknown field, name a fault the
//! twin knows on a service that can suffer it, and its figures are clamped
//! to sane ranges. One retry, a timeout per attempt, and on any failure
//! the built-in generator takes over, with the reason in the entry's note.
//! The answer key comes from the twin's own knowledge of the fault (the
//! built-in families), not from the model.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{BuiltinGenerator, GenerateFuture, Generated, GenerationRequest, ScenarioGenerator, ScenarioSpec};
use crate::{
    catalog::{AnswerKey, RootCause, Scenario},
    twin::{action::ActionKind, fault::FaultKind, fault::FaultSpec},
};

/// Attempts per scenario: the first, and one retry.
const ATTEMPTS: usize = 2;

/// Where the model is.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The API's base, as in `http://localhost:11434/v1`; requests go to
    /// `{url}/chat/completions`.
    pub url: reqwest::Url,
    /// The model's name.
    pub model: String,
    /// Sent as a bearer token, when set.
    pub api_key: Option<String>,
    /// Longest one attempt may take.
    pub timeout: Duration,
}

/// The LLM generator, falling back to the built-in one.
pub struct LlmGenerator {
    config: LlmConfig,
    http: reqwest::Client,
    fallback: BuiltinGenerator,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the request failed: {0}")]
    Request(String),
    #[error("the endpoint answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the reply is not a chat completion: {0}")]
    Envelope(String),
    #[error("the scenario is not valid JSON in the schema: {0}")]
    Schema(String),
    #[error("the scenario is not possible on the twin: {0}")]
    Impossible(String),
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: String,
}

impl LlmGenerator {
    pub fn new(config: LlmConfig, fallback: BuiltinGenerator) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { config, http, fallback })
    }

    /// The instructions: the schema, and what the twin can do.
    fn system_prompt(&self) -> String {
        let faults: Vec<&str> = FaultKind::ALL.iter().map(|f| f.as_str()).collect();
        let actions: Vec<&str> = ActionKind::ALL.iter().map(|a| a.as_str()).collect();
        let services: Vec<&str> = self.fallback.topology.names().collect();
        format!(
            "You design incidents for a simulated production estate. Answer with one JSON object and nothing else, \
             with exactly these fields: name (string), description (string), root_cause (one of: {}), \
             service (one of: {}), severity (low|medium|high|critical), metrics (array of objects with \
             metric_name, value, baseline, deviation_sigma, unit), expected_action_types (array, from: {}), \
             intensity (0.1 to 1), onset_seconds (0 to 600).",
            faults.join(", "),
            services.join(", "),
            actions.join(", ")
        )
    }

    async fn attempt(&self, request: &GenerationRequest) -> Result<ScenarioSpec, AttemptError> {
        let mut user = format!("Prompt: {}", request.prompt);
        if let Some(service) = &request.service {
            user.push_str(&format!("\nThe incident should hit: {service}"));
        }
        let body = json!({
            "model": self.config.model,
            "temperature": 0.2,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": user},
            ],
        });
        let url = format!("{}/chat/completions", self.config.url.as_str().trim_end_matches('/'));
        let mut call = self.http.post(url).json(&body);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(|e| {
            if e.is_timeout() {
                AttemptError::Timeout(self.config.timeout)
            } else {
                AttemptError::Request(e.to_string())
            }
        })?;
        if !response.status().is_success() {
            return Err(AttemptError::Status(response.status()));
        }
        let completion: Completion = response.json().await.map_err(|e| {
            if e.is_timeout() {
                AttemptError::Timeout(self.config.timeout)
            } else {
                AttemptError::Envelope(e.to_string())
            }
        })?;
        let content = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| AttemptError::Envelope("no choices".into()))?
            .message
            .content;
        // Models wrap JSON in code fences more often than not.
        let content = content
            .trim()
            .trim_start_matches("```json")
            .trim_start_matches("```")
            .trim_end_matches("```")
            .trim();
        let spec: ScenarioSpec = serde_json::from_str(content).map_err(|e| AttemptError::Schema(e.to_string()))?;
        self.checked(spec)
    }

    /// Refuses what the twin cannot run; clamps the figures.
    fn checked(&self, mut spec: ScenarioSpec) -> Result<ScenarioSpec, AttemptError> {
        let fault: FaultKind = serde_json::from_value(json!(spec.root_cause))
            .map_err(|_| AttemptError::Impossible(format!("`{}` is not a fault the twin knows", spec.root_cause)))?;
        let topology = &self.fallback.topology;
        let target = topology
            .index(&spec.service)
            .map(|i| topology.spec(i))
            .ok_or_else(|| AttemptError::Impossible(format!("`{}` is not a service of the estate", spec.service)))?;
        if !fault.can_hit(target) {
            return Err(AttemptError::Impossible(format!(
                "a {} cannot happen on `{}`",
                fault.label(),
                spec.service
            )));
        }
        if spec.expected_action_types.is_empty() {
            return Err(AttemptError::Schema("expected_action_types is empty".into()));
        }
        spec.name = clip(&spec.name, 120);
        spec.description = clip(&spec.description, 600);
        spec.intensity = if spec.intensity.is_finite() {
            spec.intensity.clamp(0.1, 1.0)
        } else {
            1.0
        };
        spec.onset_seconds = if spec.onset_seconds.is_finite() {
            spec.onset_seconds.clamp(0.0, 600.0)
        } else {
            0.0
        };
        spec.metrics
            .retain(|m| m.value.is_finite() && m.baseline.is_finite() && m.deviation_sigma.is_finite());
        spec.metrics.truncate(10);
        for metric in &mut spec.metrics {
            metric.deviation_sigma = metric.deviation_sigma.clamp(-50.0, 50.0);
            metric.metric_name = clip(&metric.metric_name, 80);
            metric.unit = clip(&metric.unit, 24);
        }
        Ok(spec)
    }

    /// The engine's scenario for a checked spec.
    fn scenario(&self, spec: ScenarioSpec, request: &GenerationRequest, seed: u32) -> Generated {
        let fault: FaultKind = serde_json::from_value(json!(spec.root_cause)).expect("checked");
        // The truth about what fixes a fault is the twin's, not the model's.
        let remediations: Vec<ActionKind> = self
            .fallback
            .families()
            .iter()
            .find(|f| f.fault == fault)
            .map(|f| f.remediations.clone())
            .unwrap_or_else(|| spec.expected_action_types.clone());
        let severity = request.severity.unwrap_or(spec.severity);
        let name = if spec.name.trim().is_empty() {
            fault.on(&spec.service)
        } else {
            spec.name.clone()
        };
        let scenario = Scenario {
            id: format!("generated_llm_{seed:08x}"),
            label: name.clone(),
            title: name,
            severity,
            affected_services: vec![spec.service.clone()],
            primary: false,
            fault: vec![FaultSpec {
                kind: fault,
                target: spec.service.clone(),
                intensity: spec.intensity,
                onset_seconds: spec.onset_seconds,
                lead_seconds: 30.0,
                duration_seconds: None,
            }],
            answer: AnswerKey {
                root_cause: RootCause {
                    service: spec.service.clone(),
                    fault,
                },
                equally_strong: Vec::new(),
                remediations,
            },
            faulty_voters: Vec::new(),
        };
        Generated {
            scenario,
            spec: ScenarioSpec { severity, ..spec },
            note: format!("generated by {}", self.config.model),
        }
    }
}

impl ScenarioGenerator for LlmGenerator {
    fn generate<'a>(&'a self, request: &'a GenerationRequest) -> GenerateFuture<'a> {
        Box::pin(async move {
            let mut failures = Vec::new();
            for _ in 0..ATTEMPTS {
                // The client's timeout covers the request; this one covers
                // a body that trickles in.
                let attempt = tokio::time::timeout(self.config.timeout, self.attempt(request)).await;
                match attempt.unwrap_or(Err(AttemptError::Timeout(self.config.timeout))) {
                    Ok(spec) => {
                        let seed = (request.seed as u32) ^ (super::fnv1a(&request.prompt) as u32);
                        return Ok(self.scenario(spec, request, seed));
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            tracing::warn!(model = %self.config.model, reasons = ?failures, "the LLM gave no usable scenario; using the built-in generator");
            let mut generated = self.fallback.generate_now(request)?;
            generated.note = format!(
                "{} failed ({}); {}",
                self.config.model,
                failures.last().map(String::as_str).unwrap_or("no answer"),
                generated.note
            );
            Ok(generated)
        })
    }
}

/// At most `max` characters.
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests;
