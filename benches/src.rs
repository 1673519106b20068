//! Shared inputs of the compliance-rs benchmarks.
//!
//! Run them all, side by side: `cargo bench -p compliance-benches`.

use std::fmt::Write as _;

/// `n` workloads as one multi-document YAML stream: a realistic mix of kinds
/// (Deployments, StatefulSets, DaemonSets, Pods, Jobs, CronJobs), hardened
/// and not, with several containers, secret volumes and labels, so every
/// check has work to do. Deterministic for a given `n`.
pub fn generate_workloads(n: usize) -> String {
    let mut out = String::with_capacity(n * 1_400);
    for i in 0..n {
        let hardened = i % 3 == 0;
        let (api, kind) = match i % 6 {
            0 | 1 => ("apps/v1", "Deployment"),
            2 => ("apps/v1", "StatefulSet"),
            3 => ("apps/v1", "DaemonSet"),
            4 => ("v1", "Pod"),
            _ => ("batch/v1", "Job"),
        };
        let _ = writeln!(
            out,
            "---\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: app-{i}\n  namespace: team-{}",
            i % 40
        );
        out.push_str("  labels:\n    app: demo\n");
        if hardened {
            out.push_str("    data-classification: internal\n    data-retention: 1y\n    compliance-scope: soc2\n");
        }
        let indent = if kind == "Pod" {
            out.push_str("spec:\n");
            "  "
        } else {
            out.push_str("spec:\n  replicas: 2\n  selector:\n    matchLabels: {app: demo}\n  template:\n    metadata:\n      labels: {app: demo}\n    spec:\n");
            "      "
        };
        if hardened {
            let _ = writeln!(
                out,
                "{indent}securityContext:\n{indent}  runAsNonRoot: true\n{indent}  runAsUser: 10001\n{indent}  seccompProfile: {{type: RuntimeDefault}}"
            );
        }
        let _ = writeln!(
            out,
            "{indent}initContainers:\n{indent}- name: migrate\n{indent}  image: registry.example.com/migrate:1.{}\n{indent}  resources: {{limits: {{memory: 64Mi, cpu: 100m}}}}",
            i % 9
        );
        let _ = writeln!(out, "{indent}containers:");
        for c in 0..(1 + i % 3) {
            let _ = writeln!(
                out,
                "{indent}- name: c{c}\n{indent}  image: registry.example.com/app-{c}:{}\n{indent}  ports:\n{indent}  - containerPort: {}",
                if i % 7 == 0 { "latest".to_owned() } else { format!("2.{}", i % 13) },
                8000 + c
            );
            if hardened || c == 0 {
                let _ = writeln!(
                    out,
                    "{indent}  resources:\n{indent}    requests: {{memory: 128Mi, cpu: 50m}}\n{indent}    limits: {{memory: 256Mi, cpu: 500m}}"
                );
            }
            if hardened {
                let _ = writeln!(
                    out,
                    "{indent}  securityContext:\n{indent}    allowPrivilegeEscalation: false\n{indent}    readOnlyRootFilesystem: true\n{indent}    capabilities: {{drop: [ALL]}}"
                );
            }
            let _ = writeln!(
                out,
                "{indent}  volumeMounts:\n{indent}  - {{name: creds, mountPath: /etc/creds}}\n{indent}  - {{name: cache, mountPath: /cache}}"
            );
        }
        let mode = if i % 2 == 0 { "0400" } else { "0644" };
        let _ = writeln!(
            out,
            "{indent}volumes:\n{indent}- name: creds\n{indent}  secret:\n{indent}    secretName: creds-{i}\n{indent}    defaultMode: {mode}\n{indent}- name: cache\n{indent}  emptyDir: {{}}"
        );
        if kind == "Job" {
            let _ = writeln!(out, "{indent}restartPolicy: Never");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_workloads_are_all_read() {
        let text = generate_workloads(60);
        let c = compliance_k8s::scan_text(
            &text,
            "gen.yaml",
            &Default::default(),
            &compliance_core::Scope::only(["k8s.container.memory_limit"]),
        );
        assert!(c.gaps.is_empty(), "{:?}", c.gaps);
        assert_eq!(c.evidence.len(), 60);
        assert!(c.evidence.iter().all(|e| e.status != compliance_core::Status::Error));
    }
}
