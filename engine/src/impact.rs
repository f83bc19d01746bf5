//! The business impact model: what an incident would have cost with a
//! manual response, minus what it cost while the swarm handled it.
//! The figures are data (`data/impact.toml`); the formula is documented
//! there and in [`ImpactModel::cost_savings`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::protocol::Severity;

/// The cost inputs for one severity.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityCost {
    /// Dollars lost per minute of degradation.
    pub cost_per_minute: f64,
    /// Typical time for people to restore service, in minutes.
    pub manual_mttr_minutes: f64,
}

/// The whole model, as read from `data/impact.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactModel {
    /// Extra share of the per-minute cost for each affected service past the first.
    pub blast_factor: f64,
    /// Cost inputs by severity; every severity must be present.
    severity: BTreeMap<Severity, SeverityCost>,
    /// Revenue at risk per minute of full outage, by service.
    #[serde(default)]
    pub revenue_per_minute: BTreeMap<String, f64>,
}

impl ImpactModel {
    /// The model built into the binary.
    pub fn embedded() -> Result<Self, String> {
        let model: Self =
            toml::from_str(include_str!("../data/impact.toml")).map_err(|e| format!("data/impact.toml: {e}"))?;
        for severity in Severity::ALL {
            let cost = model
                .severity
                .get(&severity)
                .ok_or_else(|| format!("data/impact.toml: [severity.{}] is missing", severity.as_str()))?;
            if !(cost.cost_per_minute >= 0.0 && cost.manual_mttr_minutes > 0.0) {
                return Err(format!(
                    "data/impact.toml: [severity.{}] needs cost_per_minute >= 0 and manual_mttr_minutes > 0",
                    severity.as_str()
                ));
            }
        }
        Ok(model)
    }

    /// Dollars per minute `service` loses now: its revenue times its
    /// degradation (see `data/impact.toml`).
    pub fn loss_per_minute(&self, service: &str, errors: f64, p99_ms: f64, slo: (f64, f64)) -> f64 {
        let (slo_error, slo_p99_ms) = slo;
        let revenue = self.revenue_per_minute.get(service).copied().unwrap_or(0.0);
        let failing = (errors - slo_error).clamp(0.0, 1.0);
        let slowness = ((p99_ms / slo_p99_ms - 1.0) / 4.0).clamp(0.0, 1.0);
        revenue * failing.max(slowness)
    }

    /// The savings formula's inputs, for people.
    pub fn formula(&self) -> crate::protocol::SavingsFormula {
        crate::protocol::SavingsFormula {
            blast_factor: self.blast_factor,
            severities: Severity::ALL
                .iter()
                .map(|&severity| crate::protocol::SeverityInputs {
                    severity,
                    cost_per_minute: self.cost(severity).cost_per_minute,
                    manual_mttr_minutes: self.cost(severity).manual_mttr_minutes,
                })
                .collect(),
        }
    }

    pub fn cost(&self, severity: Severity) -> SeverityCost {
        self.severity[&severity]
    }

    /// `cost_per_minute × (1 + blast_factor × (services − 1)) ×
    /// max(0, manual_mttr_minutes − resolution_minutes)`, rounded to dollars.
    pub fn cost_savings(&self, severity: Severity, affected_services: usize, resolution_seconds: f64) -> f64 {
        let cost = self.cost(severity);
        let blast = 1.0 + self.blast_factor * affected_services.saturating_sub(1) as f64;
        let minutes_saved = (cost.manual_mttr_minutes - resolution_seconds / 60.0).max(0.0);
        (cost.cost_per_minute * blast * minutes_saved).round()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savings_follow_the_documented_formula() {
        let model = ImpactModel::embedded().unwrap();
        let critical = model.cost(Severity::Critical);
        // 3 services, resolved in 18 s.
        let expected =
            critical.cost_per_minute * (1.0 + 2.0 * model.blast_factor) * (critical.manual_mttr_minutes - 0.3);
        assert_eq!(model.cost_savings(Severity::Critical, 3, 18.0), expected.round());
    }

    #[test]
    fn slower_fixes_save_less_and_never_go_negative() {
        let model = ImpactModel::embedded().unwrap();
        let fast = model.cost_savings(Severity::High, 1, 20.0);
        let slow = model.cost_savings(Severity::High, 1, 600.0);
        assert!(fast > slow && slow > 0.0);
        assert_eq!(model.cost_savings(Severity::High, 1, 1e9), 0.0);
    }
}
