//! Prometheus's HTTP API, the two calls the estate needs:
//! `/api/v1/query_range` for the agents' windows and `/api/v1/query` for
//! the readiness probe. Every call has a timeout, one retry on a failure
//! that may pass (no answer, a 5xx, a 429), and a cap on what it reads, so
//! a Prometheus that is down, slow or answers garbage costs an incident a
//! named error, never a hang or a panic.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

/// Most bytes of one answer read; more is garbage for our queries.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most series one answer may hold.
const MAX_SERIES: usize = 10_000;
/// Pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// How to reach a Prometheus.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The base URL, as in `http://prometheus:9090` (no trailing slash).
    pub url: String,
    /// How to sign in, if it asks.
    pub auth: Auth,
    /// Per attempt, connecting included.
    pub timeout: Duration,
}

/// Credentials for a Prometheus behind a proxy.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    // Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Bearer(_) => "Bearer(…)",
            Self::Basic { .. } => "Basic(…)",
        })
    }
}

/// Why a query gave nothing to read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus at {url} did not answer: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} answered HTTP {status}: {body}")]
    Refused { url: String, status: u16, body: String },
    #[error("Prometheus at {url} refused the query ({kind}): {error}")]
    Failed { url: String, kind: String, error: String },
    #[error("Prometheus at {url} answered something that is not a query result: {reason}")]
    Garbage { url: String, reason: String },
    #[error(
        "Prometheus at {url} has no series for any service of the estate under the selector `{selector}`: \
         check the selector and the mapping's service label `{label}`"
    )]
    NoData {
        url: String,
        selector: String,
        label: String,
    },
}

impl QueryError {
    /// Whether trying again soon may help.
    fn transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            Self::Failed { kind, .. } => kind == "timeout" || kind == "unavailable",
            Self::Garbage { .. } | Self::NoData { .. } => false,
        }
    }
}

/// One series of a range query: its labels and its points (Unix seconds,
/// value), finite values only.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// The API's envelope.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// A matrix's points.
    #[serde(default)]
    values: Vec<(f64, String)>,
    /// A vector's one point.
    #[serde(default)]
    value: Option<(f64, String)>,
}

/// A client of one Prometheus; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    http: reqwest::Client,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        let http = reqwest::Client::builder()
            .timeout(endpoint.timeout)
            .build()
            .expect("a client with a timeout builds");
        Self { endpoint, http }
    }

    /// The base URL, for messages.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// `query` evaluated from `start` to `end` (Unix seconds) every `step`
    /// seconds.
    pub async fn range(&self, query: &str, start: f64, end: f64, step: u64) -> Result<Vec<Series>, QueryError> {
        let form = [
            ("query", query.to_owned()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", step.to_string()),
            ("timeout", format!("{}ms", self.endpoint.timeout.as_millis())),
        ];
        self.call("/api/v1/query_range", &form, "matrix").await
    }

    /// `query` evaluated now: the readiness probe.
    pub async fn instant(&self, query: &str) -> Result<Vec<Series>, QueryError> {
        let form = [("query", query.to_owned())];
        self.call("/api/v1/query", &form, "vector").await
    }

    async fn call(&self, path: &str, form: &[(&str, String)], expect: &str) -> Result<Vec<Series>, QueryError> {
        match self.attempt(path, form, expect).await {
            Err(error) if error.transient() => {
                tokio::time::sleep(RETRY_AFTER).await;
                self.attempt(path, form, expect).await
            }
            other => other,
        }
    }

    async fn attempt(&self, path: &str, form: &[(&str, String)], expect: &str) -> Result<Vec<Series>, QueryError> {
        let url = &self.endpoint.url;
        let unreachable = |e: reqwest::Error| QueryError::Unreachable {
            url: url.clone(),
            reason: if e.is_timeout() {
                format!("no answer within {:?}", self.endpoint.timeout)
            } else {
                e.to_string()
            },
        };
        let request = self.http.post(format!("{url}{path}")).form(form);
        let request = match &self.endpoint.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(QueryError::Garbage {
                    url: url.clone(),
                    reason: format!("an answer over {MAX_BODY} bytes"),
                });
            }
        }
        parse(url, status, &body, expect)
    }
}

/// Reads an answer: the series of a `expect` result, or why not.
fn parse(url: &str, status: u16, body: &[u8], expect: &str) -> Result<Vec<Series>, QueryError> {
    let garbage = |reason: String| QueryError::Garbage {
        url: url.to_owned(),
        reason,
    };
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(_) if status >= 400 => {
            return Err(QueryError::Refused {
                url: url.to_owned(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        Err(e) => return Err(garbage(e.to_string())),
    };
    if answer.status != "success" {
        return Err(QueryError::Failed {
            url: url.to_owned(),
            kind: answer.error_type.unwrap_or_else(|| format!("HTTP {status}")),
            error: answer.error.unwrap_or_default(),
        });
    }
    let data = answer.data.ok_or_else(|| garbage("a success with no data".into()))?;
    if data.result_type != expect {
        return Err(garbage(format!(
            "a {} where a {expect} was asked for",
            data.result_type
        )));
    }
    if data.result.len() > MAX_SERIES {
        return Err(garbage(format!("{} series, over {MAX_SERIES}", data.result.len())));
    }
    Ok(data
        .result
        .into_iter()
        .map(|raw| Series {
            labels: raw.metric,
            points: raw
                .values
                .into_iter()
                .chain(raw.value)
                .filter_map(|(t, v)| v.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| (t, v)))
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://prometheus";

    #[test]
    fn a_matrix_reads_with_its_labels_and_only_finite_points() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"service":"a"},"values":[[10,"1.5"],[11,"NaN"],[12,"+Inf"],[13,"2"]]}]}}"#;
        let series = parse(URL, 200, body, "matrix").unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels["service"], "a");
        assert_eq!(series[0].points, vec![(10.0, 1.5), (13.0, 2.0)]);
    }

    #[test]
    fn every_way_of_failing_is_named() {
        let cases: [(u16, &[u8], &str); 6] = [
            (
                400,
                br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
                "refused the query (bad_data): parse error",
            ),
            (502, b"<html>bad gateway</html>", "answered HTTP 502"),
            (200, b"not json", "not a query result"),
            (200, br#"{"status":"success"}"#, "a success with no data"),
            (
                200,
                br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                "a vector where a matrix",
            ),
            (
                200,
                br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["x","1"]]}]}}"#,
                "not a query result",
            ),
        ];
        for (status, body, expected) in cases {
            let error = parse(URL, status, body, "matrix").unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
            assert!(error.contains(URL), "{error}");
        }
    }

    #[test]
    fn only_what_may_pass_is_retried() {
        let refused = |status| QueryError::Refused {
            url: URL.into(),
            status,
            body: String::new(),
        };
        assert!(refused(503).transient());
        assert!(refused(429).transient());
        assert!(!refused(400).transient());
        assert!(
            !QueryError::Garbage {
                url: URL.into(),
                reason: String::new()
            }
            .transient()
        );
    }
}
