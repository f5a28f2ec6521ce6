//! Counters kept in process for `/metrics`; database-derived gauges are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::store::StoreStats;

/// How one Slack Web API call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallOutcome {
    Ok,
    RateLimited,
    Transient,
    Failed,
}

impl CallOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::RateLimited => "rate_limited",
            CallOutcome::Transient => "retryable_error",
            CallOutcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    slack_calls: Mutex<BTreeMap<(&'static str, CallOutcome), u64>>,
}

impl Metrics {
    pub fn slack_call(&self, method: &'static str, outcome: CallOutcome) {
        let mut calls = self
            .slack_calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *calls.entry((method, outcome)).or_default() += 1;
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, stats: &StoreStats) -> String {
        let mut out = String::new();
        out.push_str("# HELP accessbot_requests Access requests by status.\n");
        out.push_str("# TYPE accessbot_requests gauge\n");
        for (status, count) in &stats.requests_by_status {
            let _ = writeln!(out, "accessbot_requests{{status=\"{status}\"}} {count}");
        }
        out.push_str(
            "# HELP accessbot_slack_calls_total Slack Web API calls by method and outcome.\n",
        );
        out.push_str("# TYPE accessbot_slack_calls_total counter\n");
        let calls = self
            .slack_calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((method, outcome), count) in calls.iter() {
            let _ = writeln!(
                out,
                "accessbot_slack_calls_total{{method=\"{method}\",outcome=\"{}\"}} {count}",
                outcome.as_str()
            );
        }
        out.push_str("# HELP accessbot_slack_calls_waiting Slack calls stored and not yet made.\n");
        out.push_str("# TYPE accessbot_slack_calls_waiting gauge\n");
        let _ = writeln!(
            out,
            "accessbot_slack_calls_waiting {}",
            stats.deliveries_waiting
        );
        out.push_str("# HELP accessbot_slack_calls_failed Slack calls that failed for good.\n");
        out.push_str("# TYPE accessbot_slack_calls_failed gauge\n");
        let _ = writeln!(
            out,
            "accessbot_slack_calls_failed {}",
            stats.deliveries_failed
        );
        out
    }
}
