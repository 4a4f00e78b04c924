//! The results table (markdown) and what goes under it.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// No goal; shown for context.
    Info,
    /// The measurement itself failed.
    Failed,
    Skipped,
}

impl Verdict {
    pub fn from_goal(met: Option<bool>) -> Self {
        match met {
            Some(true) => Self::Met,
            Some(false) => Self::Missed,
            None => Self::Failed,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "**missed**",
            Self::Info => "",
            Self::Failed => "**failed**",
            Self::Skipped => "skipped",
        }
    }
}

pub struct Row {
    pub section: String,
    pub what: String,
    pub app: String,
    pub baseline: String,
    pub ratio: String,
    pub goal: String,
    pub verdict: Verdict,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub details: Vec<String>,
    pub failures: Vec<String>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &mut self,
        section: &str,
        what: impl Into<String>,
        app: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
        goal: impl Into<String>,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            section: section.to_owned(),
            what: what.into(),
            app: app.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
            goal: goal.into(),
            verdict,
        });
    }

    pub fn detail(&mut self, line: impl Into<String>) {
        let line = line.into();
        eprintln!("  {line}");
        self.details.push(line);
    }

    pub fn failure(&mut self, what: &str, error: impl std::fmt::Display) {
        let line = format!("{what}: {error}");
        eprintln!("FAILED {line}");
        self.failures.push(line);
    }

    pub fn render(&self, header: &[String]) -> String {
        let mut out = String::new();
        for line in header {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
        out.push_str("| # | Measurement | App | Baseline | App / baseline | Goal | Verdict |\n");
        out.push_str("|---|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.section,
                r.what,
                r.app,
                r.baseline,
                r.ratio,
                r.goal,
                r.verdict.text()
            );
        }
        let met = self.rows.iter().filter(|r| r.verdict == Verdict::Met).count();
        let missed = self.rows.iter().filter(|r| r.verdict == Verdict::Missed).count();
        let _ = writeln!(out, "\nGoals: {met} met, {missed} missed.");
        if !self.details.is_empty() {
            out.push_str("\nDetails:\n\n");
            for d in &self.details {
                let _ = writeln!(out, "- {d}");
            }
        }
        if self.failures.is_empty() {
            out.push_str("\nChecks: every request answered as expected; every view received every change.\n");
        } else {
            out.push_str("\nFAILURES:\n\n");
            for f in &self.failures {
                let _ = writeln!(out, "- {f}");
            }
        }
        out
    }
}
