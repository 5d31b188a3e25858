//! The report: one JSON object for stdout (the record a script keeps), and
//! the same figures as an aligned table for a person on stderr.

use serde::Serialize;
use serde_json::Value;

use crate::client::Mode;

/// Everything a run says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The subcommand run.
    pub scenario: &'static str,
    /// What the server speaks.
    pub mode: Mode,
    /// The settings of the run, the global ones included.
    pub params: Value,
    /// The scenario's own figures.
    pub results: Value,
    /// Seconds from the first connection to the end.
    pub wall_s: f64,
    /// The generator's CPU seconds (user plus system) over the run.
    pub loadgen_cpu_s: f64,
    /// `loadgen_cpu_s / wall_s`: near the generator's core count, it was
    /// the bottleneck.
    pub loadgen_cpu_util: f64,
    /// The server process, with --server-pid.
    pub server: Option<ServerReport>,
}

/// The server process over the run; with several (`--server-pid` given
/// once per instance), their sums, and each one in `each`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Its process id (the first one given).
    pub pid: u32,
    /// Its RSS before the first connection, KiB.
    pub rss_kib_before: u64,
    /// Its RSS after every connection closed, KiB.
    pub rss_kib_after: u64,
    /// Its CPU seconds (user plus system) over the run.
    pub cpu_s: f64,
    /// `cpu_s / wall_s`.
    pub cpu_util: f64,
    /// Each process, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub each: Vec<ProcessReport>,
}

/// One of several server processes over the run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// Its process id.
    pub pid: u32,
    /// Its RSS before the first connection, KiB.
    pub rss_kib_before: u64,
    /// Its RSS after every connection closed, KiB.
    pub rss_kib_after: u64,
    /// Its CPU seconds over the run.
    pub cpu_s: f64,
}

impl Report {
    /// The report as one line of JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing numbers, strings and JSON values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The report as `key  value` lines, nested keys joined with dots and
    /// ladder steps one row each.
    #[must_use]
    pub fn table(&self) -> String {
        let mut rows = Vec::new();
        rows.push(("scenario".to_owned(), self.scenario.to_owned()));
        flatten("params", &self.params, &mut rows);
        match self.results.get("steps").and_then(Value::as_array) {
            Some(steps) => {
                for step in steps {
                    let rate = step.get("rate").map(render).unwrap_or_default();
                    flatten(&format!("step {rate}/s"), step, &mut rows);
                }
                if let Some(best) = self.results.get("highest_kept_up_rate") {
                    rows.push(("highest_kept_up_rate".to_owned(), render(best)));
                }
            }
            None => flatten("results", &self.results, &mut rows),
        }
        rows.push(("wall_s".to_owned(), self.wall_s.to_string()));
        rows.push(("loadgen_cpu_s".to_owned(), self.loadgen_cpu_s.to_string()));
        rows.push((
            "loadgen_cpu_util".to_owned(),
            self.loadgen_cpu_util.to_string(),
        ));
        if let Some(server) = &self.server {
            // Serializing plain numbers cannot fail.
            flatten(
                "server",
                &serde_json::to_value(server).unwrap_or_default(),
                &mut rows,
            );
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                flatten(&format!("{prefix}.{key}"), field, rows);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, rows);
            }
        }
        other => rows.push((prefix.to_owned(), render(other))),
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_flattens_nested_results_and_ladder_steps() {
        let report = Report {
            scenario: "fanout",
            mode: Mode::Relay,
            params: json!({"subscribers": 5}),
            results: json!({"steps": [{"rate": 100.0, "latency_us": {"p99_us": 7}}],
                            "highest_kept_up_rate": 100.0}),
            wall_s: 1.0,
            loadgen_cpu_s: 0.5,
            loadgen_cpu_util: 0.5,
            server: None,
        };
        let table = report.table();
        assert!(table.contains("params.subscribers"), "{table}");
        assert!(
            table.contains("step 100.0/s.latency_us.p99_us  7"),
            "{table}"
        );
        assert!(table.contains("highest_kept_up_rate"), "{table}");
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["mode"], "relay");
        assert_eq!(json["server"], Value::Null);
    }
}
