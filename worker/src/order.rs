//! The order in which a worker given several queues takes from them: `fair` (a fetch loop per
//! queue, each taking what it finds: the default), `strict` (the queues in the order given,
//! the first always first: a later queue only gets slots the earlier ones leave free) or
//! `weighted` (each claim picks the queue to try first at random in proportion to its weight,
//! then the others the same way, so every queue with a weight is served and none starves).
//! Read from `[worker] order` and `[worker.weights]`, or `--order` and `--queues q=weight`.

use std::collections::BTreeMap;

use celeriac::QueueName;

/// How a worker orders its queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOrder {
    Fair,
    Strict,
    /// One weight (at least 1) per queue, in the order of the worker's queues.
    Weighted(Vec<u32>),
}

impl QueueOrder {
    /// The order named `order` for `queues`, with `weights` by queue name (only read, and
    /// then required for every queue, when `order` is `weighted`). `Err` names the setting.
    pub fn parse(order: &str, queues: &[QueueName], weights: &BTreeMap<String, u32>) -> Result<Self, (String, String)> {
        for (queue, weight) in weights {
            if *weight == 0 {
                return Err((format!("worker.weights.{queue}"), "must be at least 1".into()));
            }
        }
        match order {
            "fair" => Ok(Self::Fair),
            "strict" => Ok(Self::Strict),
            "weighted" => queues
                .iter()
                .map(|q| {
                    weights.get(q.as_str()).copied().ok_or_else(|| {
                        (
                            format!("worker.weights.{q}"),
                            "every queue needs a weight when order is weighted".into(),
                        )
                    })
                })
                .collect::<Result<_, _>>()
                .map(Self::Weighted),
            other => Err(("worker.order".into(), format!("{other:?} is not fair, strict or weighted"))),
        }
    }

    /// The queues' indices (of `n` queues) in the order one claim tries them.
    pub fn claim_order(&self, n: usize) -> Vec<usize> {
        match self {
            Self::Fair | Self::Strict => (0..n).collect(),
            Self::Weighted(weights) => weighted_permutation(weights),
        }
    }
}

/// Indices drawn one by one without replacement, each in proportion to its weight.
fn weighted_permutation(weights: &[u32]) -> Vec<usize> {
    let mut left: Vec<usize> = (0..weights.len()).collect();
    let mut out = Vec::with_capacity(weights.len());
    while !left.is_empty() {
        let total: u64 = left.iter().map(|&i| u64::from(weights[i])).sum();
        let mut draw = fastrand::u64(..total.max(1));
        let pick = left
            .iter()
            .position(|&i| {
                let w = u64::from(weights[i]);
                if draw < w {
                    true
                } else {
                    draw -= w;
                    false
                }
            })
            .unwrap_or(0);
        out.push(left.remove(pick));
    }
    out
}

/// Splits `--queues` entries of the form `name` or `name=weight` into the names and weights.
pub fn split_weights(entries: &[String]) -> Result<(Vec<String>, BTreeMap<String, u32>), String> {
    let mut names = Vec::new();
    let mut weights = BTreeMap::new();
    for entry in entries {
        match entry.split_once('=') {
            Some((name, weight)) => {
                let w: u32 = weight
                    .trim()
                    .parse()
                    .map_err(|_| format!("the weight of {name} must be a whole number, not {weight:?}"))?;
                names.push(name.trim().to_owned());
                weights.insert(name.trim().to_owned(), w);
            }
            None => names.push(entry.trim().to_owned()),
        }
    }
    Ok((names, weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(names: &[&str]) -> Vec<QueueName> {
        names.iter().map(|n| QueueName::parse(n).unwrap()).collect()
    }

    #[test]
    fn weights_are_checked_and_named() {
        let q = queues(&["critical", "low"]);
        let w = |pairs: &[(&str, u32)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>();
        assert_eq!(
            QueueOrder::parse("weighted", &q, &w(&[("critical", 6), ("low", 1)])),
            Ok(QueueOrder::Weighted(vec![6, 1]))
        );
        assert_eq!(
            QueueOrder::parse("weighted", &q, &w(&[("critical", 6), ("low", 0)])).unwrap_err().0,
            "worker.weights.low"
        );
        assert_eq!(
            QueueOrder::parse("weighted", &q, &w(&[("critical", 6)])).unwrap_err().0,
            "worker.weights.low"
        );
        assert_eq!(QueueOrder::parse("random", &q, &w(&[])).unwrap_err().0, "worker.order");
        assert_eq!(QueueOrder::parse("strict", &q, &w(&[])), Ok(QueueOrder::Strict));
    }

    #[test]
    fn a_weighted_first_pick_follows_the_weights() {
        let order = QueueOrder::Weighted(vec![6, 3, 1]);
        let mut first = [0u32; 3];
        for _ in 0..20_000 {
            let o = order.claim_order(3);
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2], "a permutation");
            first[o[0]] += 1;
        }
        for (count, expected) in first.iter().zip([12_000.0, 6_000.0, 2_000.0]) {
            assert!((f64::from(*count) - expected).abs() < expected * 0.06, "{first:?}");
        }
    }

    #[test]
    fn queue_entries_may_carry_weights() {
        let (names, weights) = split_weights(&["critical=6".into(), "default = 3".into(), "low".into()]).unwrap();
        assert_eq!(names, ["critical", "default", "low"]);
        assert_eq!(weights.get("default"), Some(&3));
        assert!(split_weights(&["x=lots".into()]).is_err());
    }
}
