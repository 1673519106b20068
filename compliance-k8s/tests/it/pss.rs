//! Pod Security Standards and the other hardening checks: one passing and
//! at least one failing case each.

use compliance_core::Status;

use crate::{judge, pod};

fn status(spec: &str, check: &str) -> Status {
    let e = judge(&pod(spec), check);
    assert_eq!(e.len(), 1, "{check}: {e:?}");
    e[0].status
}

#[test]
fn baseline_and_restricted_controls() {
    let c = "  containers:\n  - name: a\n";
    let cases: &[(&str, &str, Status)] = &[
        ("k8s.container.privileged", c, Status::Pass),
        ("k8s.container.privileged", "  containers: [{name: a, securityContext: {privileged: true}}]\n", Status::Fail),
        (
            "k8s.container.privileged",
            "  initContainers: [{name: i, securityContext: {privileged: true}}]\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        ("k8s.pod.host_namespaces", c, Status::Pass),
        ("k8s.pod.host_namespaces", "  hostNetwork: false\n  containers: [{name: a}]\n", Status::Pass),
        ("k8s.pod.host_namespaces", "  hostPID: true\n  containers: [{name: a}]\n", Status::Fail),
        ("k8s.pod.host_namespaces", "  hostIPC: true\n  containers: [{name: a}]\n", Status::Fail),
        ("k8s.volume.host_path", "  containers: [{name: a}]\n  volumes: [{name: v, emptyDir: {}}]\n", Status::Pass),
        (
            "k8s.volume.host_path",
            "  containers: [{name: a}]\n  volumes: [{name: v, hostPath: {path: /var/run/docker.sock}}]\n",
            Status::Fail,
        ),
        ("k8s.container.host_ports", "  containers: [{name: a, ports: [{containerPort: 80}]}]\n", Status::Pass),
        (
            "k8s.container.host_ports",
            "  containers: [{name: a, ports: [{containerPort: 80, hostPort: 0}]}]\n",
            Status::Pass,
        ),
        (
            "k8s.container.host_ports",
            "  containers: [{name: a, ports: [{containerPort: 80, hostPort: 8080}]}]\n",
            Status::Fail,
        ),
        (
            "k8s.container.added_capabilities",
            "  containers: [{name: a, securityContext: {capabilities: {add: [NET_BIND_SERVICE, CHOWN]}}}]\n",
            Status::Pass,
        ),
        (
            "k8s.container.added_capabilities",
            "  containers: [{name: a, securityContext: {capabilities: {add: [SYS_ADMIN]}}}]\n",
            Status::Fail,
        ),
        (
            "k8s.pod.apparmor",
            "  securityContext: {appArmorProfile: {type: RuntimeDefault}}\n  containers: [{name: a}]\n",
            Status::Pass,
        ),
        (
            "k8s.pod.apparmor",
            "  containers: [{name: a, securityContext: {appArmorProfile: {type: Unconfined}}}]\n",
            Status::Fail,
        ),
        (
            "k8s.pod.selinux",
            "  securityContext: {seLinuxOptions: {type: container_t, level: 's0:c123,c456'}}\n  containers: [{name: a}]\n",
            Status::Pass,
        ),
        (
            "k8s.pod.selinux",
            "  containers: [{name: a, securityContext: {seLinuxOptions: {type: spc_t}}}]\n",
            Status::Fail,
        ),
        (
            "k8s.pod.selinux",
            "  securityContext: {seLinuxOptions: {user: system_u}}\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        (
            "k8s.container.proc_mount",
            "  containers: [{name: a, securityContext: {procMount: Default}}]\n",
            Status::Pass,
        ),
        (
            "k8s.container.proc_mount",
            "  containers: [{name: a, securityContext: {procMount: Unmasked}}]\n",
            Status::Fail,
        ),
        ("k8s.pod.seccomp_unconfined", c, Status::Pass),
        (
            "k8s.pod.seccomp_unconfined",
            "  securityContext: {seccompProfile: {type: Unconfined}}\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        (
            "k8s.pod.sysctls",
            "  securityContext: {sysctls: [{name: net.ipv4.tcp_syncookies, value: '1'}]}\n  containers: [{name: a}]\n",
            Status::Pass,
        ),
        (
            "k8s.pod.sysctls",
            "  securityContext: {sysctls: [{name: kernel.msgmax, value: '65536'}]}\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        ("k8s.pod.host_process", c, Status::Pass),
        (
            "k8s.pod.host_process",
            "  securityContext: {windowsOptions: {hostProcess: true}}\n  hostNetwork: true\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        (
            "k8s.volume.types",
            "  containers: [{name: a}]\n  volumes: [{name: v, emptyDir: {}}, {name: w, secret: {secretName: s}}, {name: x, projected: {sources: []}}]\n",
            Status::Pass,
        ),
        (
            "k8s.volume.types",
            "  containers: [{name: a}]\n  volumes: [{name: v, nfs: {server: nfs.example.com, path: /}}]\n",
            Status::Fail,
        ),
        (
            "k8s.container.privilege_escalation",
            "  containers: [{name: a, securityContext: {allowPrivilegeEscalation: false}}]\n",
            Status::Pass,
        ),
        ("k8s.container.privilege_escalation", c, Status::Fail),
        ("k8s.pod.run_as_user", "  securityContext: {runAsUser: 1000}\n  containers: [{name: a}]\n", Status::Pass),
        (
            "k8s.pod.run_as_user",
            "  securityContext: {runAsUser: 1000}\n  containers: [{name: a, securityContext: {runAsUser: 0}}]\n",
            Status::Fail,
        ),
        (
            "k8s.pod.seccomp_profile",
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: a}]\n",
            Status::Pass,
        ),
        (
            "k8s.pod.seccomp_profile",
            "  containers: [{name: a, securityContext: {seccompProfile: {type: Localhost, localhostProfile: p.json}}}]\n",
            Status::Pass,
        ),
        ("k8s.pod.seccomp_profile", c, Status::Fail),
        (
            "k8s.pod.seccomp_profile",
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: a, securityContext: {seccompProfile: {type: Unconfined}}}]\n",
            Status::Fail,
        ),
        (
            "k8s.container.capabilities_drop_all",
            "  containers: [{name: a, securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}}]\n",
            Status::Pass,
        ),
        (
            "k8s.container.capabilities_drop_all",
            "  containers: [{name: a, securityContext: {capabilities: {drop: [NET_RAW]}}}]\n",
            Status::Fail,
        ),
        (
            "k8s.container.capabilities_drop_all",
            "  containers: [{name: a, securityContext: {capabilities: {drop: [ALL], add: [CHOWN]}}}]\n",
            Status::Fail,
        ),
        ("k8s.container.cpu_limit", "  containers: [{name: a, resources: {limits: {cpu: 500m}}}]\n", Status::Pass),
        ("k8s.container.cpu_limit", c, Status::Fail),
        ("k8s.container.image_latest", "  containers: [{name: a, image: 'nginx:1.27'}]\n", Status::Pass),
        ("k8s.container.image_latest", "  containers: [{name: a, image: 'nginx@sha256:0123'}]\n", Status::Pass),
        ("k8s.container.image_latest", "  containers: [{name: a, image: 'nginx:latest'}]\n", Status::Fail),
        ("k8s.container.image_latest", "  containers: [{name: a, image: 'registry:5000/nginx'}]\n", Status::Fail),
        ("k8s.container.image_digest", "  containers: [{name: a, image: 'nginx:1.27@sha256:0123'}]\n", Status::Pass),
        ("k8s.container.image_digest", "  containers: [{name: a, image: 'nginx:1.27'}]\n", Status::Fail),
        (
            "k8s.container.read_only_root_filesystem",
            "  containers: [{name: a, securityContext: {readOnlyRootFilesystem: true}}]\n",
            Status::Pass,
        ),
        ("k8s.container.read_only_root_filesystem", c, Status::Fail),
    ];
    for (check, spec, expected) in cases {
        assert_eq!(status(spec, check), *expected, "{check} on:\n{spec}");
    }
}

#[test]
fn apparmor_annotations_of_the_pod_template() {
    let deploy = |value: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  template:\n    metadata:\n      annotations:\n        container.apparmor.security.beta.kubernetes.io/a: {value}\n    spec:\n      containers: [{{name: a}}]\n"
        )
    };
    assert_eq!(judge(&deploy("runtime/default"), "k8s.pod.apparmor")[0].status, Status::Pass);
    let e = &judge(&deploy("unconfined"), "k8s.pod.apparmor")[0];
    assert_eq!(e.status, Status::Fail);
    assert_eq!(
        e.details["violations"][0]["field"],
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/a]"
    );
}

#[test]
fn every_check_has_metadata_and_pss_checks_name_their_control() {
    let checks = compliance_k8s::checks();
    assert!(checks.len() >= 24);
    for c in &checks {
        assert!(c.id.as_str().starts_with("k8s."));
        assert!(!c.title.is_empty() && !c.rationale.is_empty() && !c.remediation.is_empty(), "{}", c.id);
    }
    let pss: Vec<_> =
        checks.iter().filter(|c| c.references.iter().any(|r| r.starts_with("Pod Security Standards"))).collect();
    // 11 baseline and 6 restricted controls (run_as_non_root among them).
    assert_eq!(pss.iter().filter(|c| c.references[0].contains("baseline")).count(), 11);
    assert_eq!(pss.iter().filter(|c| c.references[0].contains("restricted")).count(), 6);
}

#[test]
fn pods_on_the_default_service_account_mount_no_token() {
    let check = "k8s.pod.service_account_token";
    let cases: &[(&str, Status)] = &[
        ("  containers: [{name: a}]\n", Status::Fail),
        (
            "  serviceAccountName: default\n  automountServiceAccountToken: true\n  containers: [{name: a}]\n",
            Status::Fail,
        ),
        ("  automountServiceAccountToken: false\n  containers: [{name: a}]\n", Status::Pass),
        (
            "  serviceAccountName: builder\n  automountServiceAccountToken: false\n  containers: [{name: a}]\n",
            Status::Pass,
        ),
        // A named account was made for API access: its token is expected.
        ("  serviceAccountName: operator\n  containers: [{name: a}]\n", Status::NotApplicable),
        ("  serviceAccount: operator\n  containers: [{name: a}]\n", Status::NotApplicable),
    ];
    for (spec, expected) in cases {
        assert_eq!(status(spec, check), *expected, "{check} on:\n{spec}");
    }
    let e = &judge(&pod("  containers: [{name: a}]\n"), check)[0];
    assert_eq!(e.details["violations"][0]["field"], "spec.automountServiceAccountToken");
}
