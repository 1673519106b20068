//! Progress of a scan on stderr: a bar on a terminal (targets done of
//! total, evidence so far, gaps), plain lines otherwise (a CI log), nothing
//! with `--quiet`.

use std::io::IsTerminal;

use compliance_core::ProgressEvent;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

/// Shows the events until the run drops its sender.
pub async fn show(mut rx: UnboundedReceiver<ProgressEvent>, quiet: bool) {
    let terminal = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let (mut done, mut total, mut evidence, mut gaps) = (0usize, 0usize, 0usize, 0usize);
    while let Some(event) = rx.recv().await {
        if quiet {
            continue;
        }
        match event {
            ProgressEvent::CollectorStarted { collector } if bar.is_none() => eprintln!("[{collector}] collecting..."),
            ProgressEvent::CollectorFinished { collector, evidence, gaps, elapsed_ms } => {
                let line = format!("[{collector}] {evidence} evidence, {gaps} gaps in {elapsed_ms} ms");
                match &bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
            ProgressEvent::CollectorFailed { collector, reason } => {
                let line = format!("[{collector}] FAILED: {reason}");
                match &bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
            ProgressEvent::TargetsPlanned { collector, total: planned } => {
                total += planned;
                if terminal {
                    let b = bar.get_or_insert_with(|| {
                        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
                        let style =
                            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} targets, {elapsed}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> ");
                        b.set_style(style);
                        b
                    });
                    b.set_length(total as u64);
                    b.set_message(format!("[{collector}] {evidence} evidence, {gaps} gaps"));
                } else {
                    eprintln!("[{collector}] {planned} targets");
                }
            }
            ProgressEvent::TargetFinished { collector, target, evidence: e, gaps: g } => {
                done += 1;
                evidence += e;
                gaps += g;
                match &bar {
                    Some(b) => {
                        b.set_position(done as u64);
                        b.set_message(format!("[{collector}] {evidence} evidence, {gaps} gaps"));
                    }
                    None => eprintln!("[{collector}] {target} done ({done}/{total}): {e} evidence, {g} gaps"),
                }
            }
            _ => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
