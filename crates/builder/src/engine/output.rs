//! Readable output from steps that run at the same time.
//!
//! Independent stages run in parallel, but the client still gets one block per step, in
//! step order, exactly as if they had run one after another (Docker's legacy stream:
//! `Step n/m`, the step's output, ` ---> id`). The step being shown streams live; a later
//! step that runs meanwhile is buffered and shown, whole or as far as it got, as soon as
//! every step before it has finished.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::backend::Output;

#[derive(Default)]
struct Pending {
    texts: Vec<String>,
    done: bool,
}

#[derive(Default)]
struct State {
    /// The step shown live.
    current: usize,
    pending: BTreeMap<usize, Pending>,
}

pub struct Sequencer<'a> {
    out: &'a dyn Output,
    state: Mutex<State>,
}

impl<'a> Sequencer<'a> {
    pub fn new(out: &'a dyn Output) -> Sequencer<'a> {
        Sequencer {
            out,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Output of step `step` (0-based).
    pub fn emit(&self, step: usize, text: String) {
        let mut st = self.lock();
        if step <= st.current {
            self.out.send(text);
        } else {
            st.pending.entry(step).or_default().texts.push(text);
        }
    }

    /// Step `step` is over: the next ones may show.
    pub fn finish(&self, step: usize) {
        let mut st = self.lock();
        if step != st.current {
            st.pending.entry(step).or_default().done = true;
            return;
        }
        st.current += 1;
        loop {
            let cur = st.current;
            let Some(p) = st.pending.remove(&cur) else {
                break;
            };
            for t in p.texts {
                self.out.send(t);
            }
            if !p.done {
                break;
            }
            st.current += 1;
        }
    }

    /// Shows everything still buffered, in step order (after a failure stopped the build).
    pub fn flush(&self) {
        let mut st = self.lock();
        let pending = std::mem::take(&mut st.pending);
        for (step, p) in pending {
            st.current = st.current.max(step);
            for t in p.texts {
                self.out.send(t);
            }
        }
    }

    /// Output that belongs to no step (warnings after the last one).
    pub fn direct(&self, text: String) {
        self.out.send(text);
    }
}

/// One step's view of the sequencer, handed to the backend as its [`Output`].
pub struct StepOut<'s, 'a> {
    pub seq: &'s Sequencer<'a>,
    pub step: usize,
}

impl Output for StepOut<'_, '_> {
    fn send(&self, text: String) {
        self.seq.emit(self.step, text);
    }
}

impl StepOut<'_, '_> {
    pub fn line(&self, text: impl Into<String>) {
        self.seq.emit(self.step, text.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Mutex<Vec<String>>);
    impl Output for Collect {
        fn send(&self, text: String) {
            self.0.lock().unwrap().push(text);
        }
    }

    #[test]
    fn later_steps_wait_for_earlier_ones() {
        let c = Collect(Mutex::new(Vec::new()));
        let s = Sequencer::new(&c);
        s.emit(0, "a0".into());
        s.emit(2, "c0".into());
        s.emit(1, "b0".into());
        s.finish(2);
        s.emit(1, "b1".into());
        assert_eq!(*c.0.lock().unwrap(), vec!["a0"]);
        s.finish(0);
        assert_eq!(*c.0.lock().unwrap(), vec!["a0", "b0", "b1"]);
        s.emit(1, "b2".into());
        s.finish(1);
        assert_eq!(*c.0.lock().unwrap(), vec!["a0", "b0", "b1", "b2", "c0"]);
        s.emit(3, "d0".into());
        assert_eq!(c.0.lock().unwrap().last().unwrap(), "d0", "step 3 is live");
    }

    #[test]
    fn flush_shows_what_a_failure_left() {
        let c = Collect(Mutex::new(Vec::new()));
        let s = Sequencer::new(&c);
        s.emit(3, "d".into());
        s.emit(1, "b".into());
        s.flush();
        assert_eq!(*c.0.lock().unwrap(), vec!["b", "d"]);
    }
}
