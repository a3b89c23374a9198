//! The build plan: stages, what each depends on (`FROM <stage>`, `COPY --from`,
//! `RUN --mount=from=`), which stages the target needs (the others are skipped, as
//! BuildKit does), and the step number of every instruction that runs.

use std::collections::BTreeSet;

use crate::flags;
use crate::instruction::Command;
use crate::shell::{self, Vars};

#[derive(Debug, Clone)]
pub struct PlannedStage {
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// Its instructions: `start` is the `FROM`.
    pub start: usize,
    pub end: usize,
    /// Earlier stages it reads.
    pub deps: BTreeSet<usize>,
    pub needed: bool,
    /// Step index (0-based) of its `FROM` when needed.
    pub first_step: usize,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// Instructions before the first `FROM` (global `ARG`s).
    pub meta_end: usize,
    pub stages: Vec<PlannedStage>,
    /// The stage whose result is the image.
    pub target: usize,
    /// Steps that run (meta `ARG`s plus the needed stages' instructions).
    pub steps: usize,
}

impl Plan {
    /// The stage a `--from`/`FROM` word names, from the point of view of stage `from`:
    /// an index, or the latest earlier stage of that name.
    pub fn stage_ref(&self, name: &str, from: usize) -> Option<usize> {
        if let Ok(i) = name.parse::<usize>() {
            return (i < from).then_some(i);
        }
        let lower = name.to_ascii_lowercase();
        self.stages[..from.min(self.stages.len())]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map(|s| s.index)
    }
}

/// A Dockerfile without the stage a build needs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no build stage in current context")]
    NoStage,
    #[error("failed to reach build target {0} in Dockerfile")]
    NoTarget(String),
}

/// Plans a build of `commands` (one per instruction) for `target` (else the last stage).
/// `vars` are the global `ARG` values, used to resolve stage references; `contexts` are
/// the named build contexts, which win over stages of the same name.
pub fn plan(
    commands: &[Command],
    target: Option<&str>,
    vars: &Vars,
    escape: char,
    contexts: &[String],
) -> Result<Plan, PlanError> {
    let meta_end = commands
        .iter()
        .position(|c| matches!(c, Command::From(_)))
        .ok_or(PlanError::NoStage)?;
    let mut stages: Vec<PlannedStage> = Vec::new();
    for (i, c) in commands.iter().enumerate().skip(meta_end) {
        if let Command::From(f) = c {
            if let Some(last) = stages.last_mut() {
                last.end = i;
            }
            stages.push(PlannedStage {
                index: stages.len(),
                name: f.alias.clone(),
                start: i,
                end: commands.len(),
                deps: BTreeSet::new(),
                needed: false,
                first_step: 0,
            });
        }
    }
    let mut p = Plan {
        meta_end,
        stages,
        target: 0,
        steps: 0,
    };
    let is_context = |n: &str| contexts.iter().any(|c| c.eq_ignore_ascii_case(n));
    for s in 0..p.stages.len() {
        let mut deps = BTreeSet::new();
        let mut any_earlier = false;
        let (start, end) = (p.stages[s].start, p.stages[s].end);
        for c in &commands[start..end] {
            let refs: Vec<String> = match c {
                Command::From(f) => vec![f.image.clone()],
                Command::Copy(cp) => cp.from.iter().cloned().collect(),
                Command::Run(r) => r
                    .mounts
                    .iter()
                    .filter_map(|m| {
                        let expanded = shell::expand_word(m, vars, escape).ok()?;
                        flags::parse_mount(&expanded).ok()?.from
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for raw in refs {
                let name = shell::expand_word(&raw, vars, escape).unwrap_or_default();
                if is_context(&name) {
                    continue;
                }
                match p.stage_ref(&name, s) {
                    Some(d) => {
                        deps.insert(d);
                    }
                    // A name built from variables only the stage knows could be any
                    // earlier stage: keep them all.
                    None if raw.contains('$') => any_earlier = true,
                    None => {}
                }
            }
        }
        if any_earlier {
            deps.extend(0..s);
        }
        p.stages[s].deps = deps;
    }
    p.target = match target.filter(|t| !t.is_empty()) {
        None => p.stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            p.stages
                .iter()
                .rev()
                .find(|s| s.name.as_deref() == Some(lower.as_str()))
                .map(|s| s.index)
                .ok_or_else(|| PlanError::NoTarget(t.to_string()))?
        }
    };
    let mut todo = vec![p.target];
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut p.stages[s].needed, true) {
            continue;
        }
        todo.extend(p.stages[s].deps.iter().copied());
    }
    let mut step = meta_end;
    for s in &mut p.stages {
        if s.needed {
            s.first_step = step;
            step += s.end - s.start;
        }
    }
    p.steps = step;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::command;
    use crate::parser;

    fn plan_of(df: &str, target: Option<&str>) -> Plan {
        let d = parser::parse(df).unwrap();
        let cmds: Vec<Command> = d.instructions.iter().map(|i| command(i).unwrap()).collect();
        let mut vars = Vars::new();
        vars.insert("STAGE".into(), "b".into());
        plan(&cmds, target, &vars, '\\', &["ctx".to_string()]).unwrap()
    }

    #[test]
    fn unused_stages_are_skipped() {
        let p = plan_of(
            "ARG X=1\nFROM busybox AS a\nRUN a\nFROM busybox AS unused\nRUN u\nFROM busybox AS b\nRUN b\nFROM a\nCOPY --from=b /x /x\nRUN --mount=from=ctx,target=/c true\n",
            None,
        );
        let needed: Vec<bool> = p.stages.iter().map(|s| s.needed).collect();
        assert_eq!(needed, vec![true, false, true, true]);
        assert_eq!(p.stages[3].deps, BTreeSet::from([0, 2]));
        // ARG + a (2) + b (2) + final (3).
        assert_eq!(p.steps, 8);
        assert_eq!(p.stages[0].first_step, 1);
        assert_eq!(p.stages[2].first_step, 3);
        assert_eq!(p.stages[3].first_step, 5);
    }

    #[test]
    fn targets_mounts_indexes_and_variables() {
        let df = "FROM busybox AS a\nFROM busybox AS b\nRUN --mount=type=bind,from=a,target=/a true\nFROM busybox\nCOPY --from=1 / /\nFROM busybox\nCOPY --from=${STAGE} / /\n";
        let p = plan_of(df, Some("B"));
        assert_eq!(p.target, 1);
        assert!(p.stages[0].needed && p.stages[1].needed);
        assert!(!p.stages[2].needed && !p.stages[3].needed);
        let p = plan_of(df, None);
        assert_eq!(p.stages[3].deps, BTreeSet::from([1]), "${{STAGE}} is b");
        assert!(!p.stages[2].needed);
        let d = parser::parse(df).unwrap();
        let cmds: Vec<Command> = d.instructions.iter().map(|i| command(i).unwrap()).collect();
        let e = plan(&cmds, Some("nope"), &Vars::new(), '\\', &[])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "failed to reach build target nope in Dockerfile");
        // Unknown variable: every earlier stage may be meant.
        let p = plan(&cmds, None, &Vars::new(), '\\', &[]).unwrap();
        assert_eq!(p.stages[3].deps, BTreeSet::from([0, 1, 2]));
    }
}
