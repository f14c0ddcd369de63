//! Settling a pipeline: its sources take every row available to them now (memory logs,
//! files; what a Pulsar consumer has received), let idle partitions release the watermark,
//! and send a barrier; settling ends once the pipeline's end has completed that barrier.
//! Tests and embedders use it to observe a job's results without sleeping.

use tokio::sync::watch;

use super::Epoch;

/// A settle request: its number.
pub type SettleRequest = u64;

/// The source side of settling: requests to watch, and where to report the barrier that
/// answers each.
#[derive(Debug)]
pub struct SourceSettle {
    /// Increases with every request.
    pub requests: watch::Receiver<SettleRequest>,
    /// The last request answered, and the barrier that answered it.
    pub answered: watch::Sender<(SettleRequest, Epoch)>,
}

/// The caller side of settling a pipeline.
#[derive(Debug)]
pub struct SettleHandle {
    requests: watch::Sender<SettleRequest>,
    answers: Vec<watch::Receiver<(SettleRequest, Epoch)>>,
    completed: watch::Receiver<Epoch>,
}

/// Whether the pipeline was still running when it settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Every source answered and the barriers completed.
    Running,
    /// A source, or the pipeline's end, has finished.
    Ended,
}

impl SettleHandle {
    /// A handle whose pipeline reports completed barriers on `completed`.
    pub fn new(completed: watch::Receiver<Epoch>) -> Self {
        Self {
            requests: watch::channel(0).0,
            answers: Vec::new(),
            completed,
        }
    }

    /// Wiring for one more source.
    pub fn source(&mut self) -> SourceSettle {
        let (answered, answers) = watch::channel((0, Epoch(0)));
        self.answers.push(answers);
        SourceSettle {
            requests: self.requests.subscribe(),
            answered,
        }
    }

    /// Asks every source to settle and waits until the pipeline's end has completed the
    /// barriers they answered with.
    pub async fn settle(&self) -> Settled {
        self.requests.send_modify(|r| *r += 1);
        let request = *self.requests.borrow();
        let mut target = Epoch(0);
        let mut settled = Settled::Running;
        for answers in &self.answers {
            let mut answers = answers.clone();
            loop {
                let (answered, epoch) = *answers.borrow_and_update();
                if answered >= request {
                    target = target.max(epoch);
                    break;
                }
                if answers.changed().await.is_err() {
                    settled = Settled::Ended;
                    break;
                }
            }
        }
        let mut completed = self.completed.clone();
        while *completed.borrow_and_update() < target {
            if completed.changed().await.is_err() {
                return Settled::Ended;
            }
        }
        settled
    }
}
