//! Prints the checklist as it is made: text (a heading per step, one line per check, the next
//! step under each check that did not pass, the step's verdict) or JSON lines (one object per
//! check, then a summary object; docs/doctor.md).

use std::io::Write;

use super::check::{step_outcome, Check, Outcome, Step};

const STEPS: [Step; 4] = [Step::Device, Step::AlarmHosts, Step::Linkage, Step::Live];

fn outcome_word(o: Option<Outcome>) -> &'static str {
    match o {
        Some(Outcome::Pass) => "pass",
        Some(Outcome::Fail) => "fail",
        Some(Outcome::CannotTell) => "cannot_tell",
        None => "not_run",
    }
}

/// Writes checks to `out` as they come and keeps them for the summary.
pub struct Reporter<W: Write> {
    json: bool,
    out: W,
    checks: Vec<Check>,
    current: Option<Step>,
}

impl<W: Write> Reporter<W> {
    /// `json`: JSON lines instead of text.
    pub fn new(json: bool, out: W) -> Self {
        Reporter {
            json,
            out,
            checks: Vec::new(),
            current: None,
        }
    }

    /// The heading (text only).
    pub fn start(&mut self, device: &str) {
        if !self.json {
            let _ = writeln!(self.out, "alarmscope doctor: {device}");
        }
    }

    fn close_step(&mut self) {
        if let (false, Some(s)) = (self.json, self.current) {
            let o = step_outcome(&self.checks, s);
            let _ = writeln!(
                self.out,
                "  => step {}: {}",
                s.number(),
                outcome_word(o).replace('_', " ")
            );
        }
    }

    /// Print one check now.
    pub fn add(&mut self, c: Check) {
        if self.current != Some(c.step) {
            self.close_step();
            self.current = Some(c.step);
            if !self.json {
                let _ = writeln!(self.out, "\n{}. {}", c.step.number(), c.step.title());
            }
        }
        if self.json {
            let _ = writeln!(self.out, "{}", c.to_json());
        } else {
            let _ = write!(self.out, "{}", c.to_text());
        }
        let _ = self.out.flush();
        self.checks.push(c);
    }

    /// The checks so far.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Print the summary; the exit code (1 when any check failed).
    pub fn finish(&mut self) -> i32 {
        self.close_step();
        let count = |o: Outcome| self.checks.iter().filter(|c| c.outcome == o).count();
        let (pass, fail, unsure) = (
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::CannotTell),
        );
        if self.json {
            let steps: serde_json::Map<String, serde_json::Value> = STEPS
                .iter()
                .map(|s| {
                    (
                        serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        outcome_word(step_outcome(&self.checks, *s)).into(),
                    )
                })
                .collect();
            let _ = writeln!(
                self.out,
                "{}",
                serde_json::json!({"summary": {"steps": steps, "pass": pass, "fail": fail, "cannot_tell": unsure}})
            );
        } else {
            let steps: Vec<String> = STEPS
                .iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        s.number(),
                        outcome_word(step_outcome(&self.checks, *s)).replace('_', " ")
                    )
                })
                .collect();
            let _ = writeln!(
                self.out,
                "\nsummary: {pass} pass, {fail} fail, {unsure} cannot tell (steps: {})",
                steps.join(", ")
            );
        }
        let _ = self.out.flush();
        i32::from(fail > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Finding;

    #[test]
    fn text_and_json_summaries() {
        let mut r = Reporter::new(false, Vec::new());
        r.start("http://d");
        r.add(Check::new(
            Step::Device,
            Finding::Reachable {
                url: "http://d".into(),
            },
        ));
        r.add(Check::new(Step::Linkage, Finding::NoTriggers));
        assert_eq!(r.finish(), 1);
        let t = String::from_utf8(r.out.clone()).unwrap();
        assert!(
            t.contains(
                "\n1. device\n  [pass] http://d answers and speaks ISAPI\n  => step 1: pass\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "\n3. event linkage\n  [FAIL] the device lists no event trigger\n         -> "
            ),
            "{t}"
        );
        assert!(t.ends_with("summary: 1 pass, 1 fail, 0 cannot tell (steps: 1 pass, 2 not run, 3 fail, 4 not run)\n"), "{t}");

        let mut r = Reporter::new(true, Vec::new());
        r.add(Check::new(
            Step::Device,
            Finding::Reachable {
                url: "http://d".into(),
            },
        ));
        assert_eq!(r.finish(), 0);
        let lines: Vec<serde_json::Value> = String::from_utf8(r.out.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["finding"]["kind"], "reachable");
        assert_eq!(lines[1]["summary"]["steps"]["device"], "pass");
        assert_eq!(lines[1]["summary"]["steps"]["live"], "not_run");
    }
}
