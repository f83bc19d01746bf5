//! The Byzantine vote that stands between a diagnosis and any remediation.
//!
//! Every agent judges the proposed plan from its own evidence and votes
//! approve or reject. With `n` voters the quorum tolerates
//! `f = ⌊(n − 1) / 3⌋` faulty ones, and a plan passes only with at least
//! `2f + 1` approvals. Honest agents never approve a plan their evidence
//! contradicts, so faulty voters alone cannot pass a plan unless they are a
//! quorum themselves: with five voters (f = 1, quorum 3), up to two faulty
//! voters can neither pass a wrong plan nor, since three honest approvals
//! remain, block a right one.
//!
//! Faulty behaviour is injected by scenarios, to show the vote holding.

use rand::{Rng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::protocol::{AgentType, ConsensusRound, ConsensusVote, VoteChoice};

/// Who votes: every agent of the swarm.
pub const VOTERS: [AgentType; 5] = AgentType::ALL;

/// How a faulty voter misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Votes at random.
    Random,
    /// Votes against its own evidence, every time.
    Adversarial,
    /// Never votes.
    Silent,
}

impl Behaviour {
    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// The most faulty voters `n` voters tolerate: ⌊(n − 1) / 3⌋.
pub fn tolerated(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Approvals a plan needs: 2f + 1.
pub fn quorum(n: usize) -> usize {
    2 * tolerated(n) + 1
}

/// The most faulty voters for which no wrong plan can pass: one fewer than
/// a quorum.
pub fn max_tolerable_faulty(n: usize) -> usize {
    quorum(n) - 1
}

/// One agent's ballot: its honest judgement, bent by its fault if any.
pub fn cast(honest_approval: bool, fault: Option<Behaviour>, rng: &mut StdRng) -> VoteChoice {
    let approve = match fault {
        None => honest_approval,
        Some(Behaviour::Random) => rng.random_bool(0.5),
        Some(Behaviour::Adversarial) => !honest_approval,
        Some(Behaviour::Silent) => return VoteChoice::Silent,
    };
    if approve {
        VoteChoice::Approve
    } else {
        VoteChoice::Reject
    }
}

/// Counts the votes on `plan` and decides.
pub fn tally(plan: String, votes: Vec<ConsensusVote>) -> ConsensusRound {
    let n = votes.len();
    let count = |choice| votes.iter().filter(|v| v.choice == choice).count();
    let approvals = count(VoteChoice::Approve);
    let passed = approvals >= quorum(n);
    let majority = if passed {
        VoteChoice::Approve
    } else {
        VoteChoice::Reject
    };
    let dissent = votes.iter().filter(|v| v.choice != majority).map(|v| v.agent).collect();
    ConsensusRound {
        plan,
        voters: n,
        tolerated: tolerated(n),
        quorum: quorum(n),
        approvals,
        rejections: count(VoteChoice::Reject),
        silent: count(VoteChoice::Silent),
        passed,
        dissent,
        votes,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;

    fn vote(agent: AgentType, choice: VoteChoice) -> ConsensusVote {
        ConsensusVote {
            agent,
            choice,
            reason: String::new(),
            injected_fault: None,
        }
    }

    #[test]
    fn five_voters_tolerate_one_and_need_three() {
        assert_eq!((tolerated(5), quorum(5)), (1, 3));
        assert_eq!((tolerated(4), quorum(4)), (1, 3));
        assert_eq!((tolerated(7), quorum(7)), (2, 5));
        assert_eq!((tolerated(1), quorum(1)), (0, 1));
    }

    #[test]
    fn dissent_names_those_against_the_outcome() {
        let round = tally(
            "p".into(),
            vec![
                vote(AgentType::Detection, VoteChoice::Approve),
                vote(AgentType::Diagnosis, VoteChoice::Approve),
                vote(AgentType::Prediction, VoteChoice::Approve),
                vote(AgentType::Resolution, VoteChoice::Reject),
                vote(AgentType::Communication, VoteChoice::Silent),
            ],
        );
        assert!(round.passed);
        assert_eq!(round.dissent, [AgentType::Resolution, AgentType::Communication]);
    }

    /// Runs one vote: `faulty[i]` is voter i's fault, and every honest
    /// voter approves exactly when the plan is right.
    fn run(n: usize, faulty: &[Option<Behaviour>], plan_is_right: bool, seed: u64) -> ConsensusRound {
        let mut rng = StdRng::seed_from_u64(seed);
        let votes = (0..n)
            .map(|i| {
                let choice = cast(plan_is_right, faulty.get(i).copied().flatten(), &mut rng);
                vote(VOTERS[i % VOTERS.len()], choice)
            })
            .collect();
        tally("plan".into(), votes)
    }

    fn behaviour() -> impl Strategy<Value = Behaviour> {
        prop_oneof![
            Just(Behaviour::Random),
            Just(Behaviour::Adversarial),
            Just(Behaviour::Silent)
        ]
    }

    /// `n` voters of which `k` (in `k_range(n)`) are faulty, in shuffled
    /// positions.
    fn population(
        k_range: fn(usize) -> std::ops::RangeInclusive<usize>,
    ) -> impl Strategy<Value = (usize, Vec<Option<Behaviour>>)> {
        (1usize..=13).prop_flat_map(move |n| {
            k_range(n).prop_flat_map(move |k| {
                prop::collection::vec(behaviour(), k)
                    .prop_map(move |faults| {
                        let mut all: Vec<Option<Behaviour>> = faults.into_iter().map(Some).collect();
                        all.resize(n, None);
                        all
                    })
                    .prop_shuffle()
                    .prop_map(move |all| (n, all))
            })
        })
    }

    proptest! {
        /// Safety: never approve with fewer than 2f + 1 approvals.
        #[test]
        fn never_passes_without_a_quorum(choices in prop::collection::vec(0u8..3, 1..16)) {
            let votes = choices.iter().enumerate().map(|(i, c)| vote(VOTERS[i % 5], match c {
                0 => VoteChoice::Approve,
                1 => VoteChoice::Reject,
                _ => VoteChoice::Silent,
            })).collect::<Vec<_>>();
            let n = votes.len();
            let round = tally("p".into(), votes);
            let needed = 2 * ((n - 1) / 3) + 1;
            prop_assert_eq!(round.passed, round.approvals >= needed);
        }

        /// Safety: a wrong plan never passes while the faulty voters are
        /// fewer than a quorum (which includes every case of more than f).
        #[test]
        fn a_wrong_plan_never_passes((n, faults) in population(|n| 0..=max_tolerable_faulty(n)), seed in any::<u64>()) {
            let round = run(n, &faults, false, seed);
            prop_assert!(!round.passed, "{round:?}");
        }

        /// Liveness: with at most f faulty voters, the right plan passes.
        #[test]
        fn the_right_plan_passes_despite_f_faulty((n, faults) in population(|n| 0..=tolerated(n)), seed in any::<u64>()) {
            let round = run(n, &faults, true, seed);
            prop_assert!(round.passed, "{round:?}");
        }
    }
}
