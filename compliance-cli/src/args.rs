//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use compliance_core::Severity;
use serde::Deserialize;

/// Continuous compliance evidence for Kubernetes and AWS.
#[derive(Debug, Parser)]
#[command(name = "compliance", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). COMPLIANCE_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect evidence, judge it, write the report.
    Scan(Box<ScanArgs>),
    /// Work with the built-in checks.
    Checks {
        /// What to do.
        #[command(subcommand)]
        command: ChecksCommand,
    },
    /// Work with compliance frameworks.
    Frameworks {
        /// What to do.
        #[command(subcommand)]
        command: FrameworksCommand,
    },
    /// Plan (dry run, the default) or apply fixes for the failures in a report.
    Remediate(Box<RemediateArgs>),
    /// Scan on an interval, store every run (tamper-evident), alert on change, serve /metrics.
    Monitor(MonitorArgs),
    /// Query and verify the stored evidence history.
    Evidence {
        /// What to do.
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Serve the validating admission webhook over HTTPS: POST /validate, GET /metrics, GET /healthz.
    Webhook(WebhookArgs),
    /// Signing keys for evidence packages, checkpoints and reports (Ed25519, PEM).
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Verify a signed report.
    Report {
        /// What to do.
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Print the monitoring artifacts generated from the exported metric names.
    Monitoring {
        /// What to print.
        #[command(subcommand)]
        command: MonitoringCommand,
    },
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new Ed25519 key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SubjectPublicKeyInfo PEM).
    Generate {
        /// The path and name of both files, without extension (keys/monitor-2026).
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
    },
    /// Print the fingerprint of a public or private key PEM file (the key id in signatures).
    Fingerprint {
        /// The PEM file.
        file: PathBuf,
    },
}

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check the envelope `scan --sign-key` wrote beside a report: its signature and every file it covers.
    /// Exit 1 naming the first problem.
    Verify {
        /// The envelope (`compliance_report_<time>.dsse.json`).
        envelope: PathBuf,
        /// The signer's public key (PEM), or a keyring YAML file of keys with their validity periods.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
}

/// `checks` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChecksCommand {
    /// List every check: id, severity, title.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

/// `checks list` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A table.
    Text,
    /// JSON.
    Json,
}

/// `monitoring` subcommands.
#[derive(Debug, Subcommand)]
pub enum MonitoringCommand {
    /// Prometheus alert rules: violation, drift, stale evidence, evidence gaps.
    AlertRules,
    /// A Grafana dashboard (JSON).
    GrafanaDashboard,
}

/// `frameworks` subcommands.
#[derive(Debug, Subcommand)]
pub enum FrameworksCommand {
    /// List the built-in frameworks.
    List,
    /// What the built-in frameworks' controls are judged by: per framework, the controls with a
    /// native check (evidence in every scan of its source) and those fed by AWS Config rules only
    /// (evidence when the account runs those rules), as a Markdown table.
    Coverage,
    /// Show one framework's controls and the checks behind them.
    Show {
        /// The framework id (soc2, iso27001, pci-dss).
        id: String,
    },
}

/// `--format` values: the report crate's formats, by name.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = compliance_report::Format> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(compliance_report::Format::ALL.map(|f| f.name()))
        .try_map(|name| name.parse::<compliance_report::Format>())
}

/// Severity threshold for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Never exit 1 for failures.
    None,
    /// Any failure.
    Info,
    /// Low and above.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

impl FailOn {
    /// The severity, or `None` for `none`.
    pub fn severity(self) -> Option<Severity> {
        match self {
            FailOn::None => None,
            FailOn::Info => Some(Severity::Info),
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
        }
    }
}

/// `scan` arguments; also the `scan:` section of the monitor's
/// configuration, field by field (`k8s_manifests`, `frameworks`, …).
#[derive(Debug, Args, Deserialize)]
#[serde(default)]
pub struct ScanArgs {
    /// Kubernetes manifest file or folder (recursive); repeatable.
    #[arg(long = "k8s-manifests", value_name = "PATH")]
    pub k8s_manifests: Vec<PathBuf>,
    /// Scan the live cluster of the current kubeconfig context.
    #[arg(long)]
    pub k8s_cluster: bool,
    /// Kubeconfig context to use instead of the current one; repeatable: several clusters are judged
    /// concurrently, and one that cannot be reached is one gap naming it.
    #[arg(long = "k8s-context", value_name = "NAME", requires = "k8s_cluster")]
    #[serde(deserialize_with = "one_or_many")]
    pub k8s_context: Vec<String>,
    /// Judge every context of the kubeconfig.
    #[arg(long, requires = "k8s_cluster", conflicts_with = "k8s_context")]
    pub k8s_all_contexts: bool,
    /// Only these namespaces of the cluster; repeatable (default: all).
    #[arg(long = "k8s-namespace", value_name = "NS", requires = "k8s_cluster")]
    pub k8s_namespaces: Vec<String>,
    /// Scan AWS: IAM access review, S3 buckets, AWS Config rules. Credentials
    /// come from the usual chain (environment, profile, SSO, instance role).
    #[arg(long)]
    pub aws: bool,
    /// AWS Config rules to read; repeatable (default: every rule of the region).
    #[arg(long = "aws-config-rule", value_name = "NAME", requires = "aws")]
    pub aws_config_rules: Vec<String>,
    /// The region whose Config recorder must record global resource types
    /// (IAM); AWS advises one region, to avoid duplicate items. Without it,
    /// global types are reported in the details but not judged.
    #[arg(long, value_name = "REGION", requires = "aws")]
    pub aws_config_global_region: Option<String>,
    /// Read AWS Config rule compliance of every account and region from this aggregator (in the
    /// account and region of the credentials) instead of from each account.
    #[arg(long, value_name = "NAME", requires = "aws")]
    pub aws_config_aggregator: Option<String>,
    /// Days without use after which an IAM user is inactive.
    #[arg(long, value_name = "DAYS", default_value_t = 90, requires = "aws")]
    pub aws_inactive_days: i64,
    /// S3 buckets judged at once.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "aws")]
    pub aws_bucket_concurrency: usize,
    /// Scan the accounts this file lists: a YAML list of {id, name, role_arn or profile, external_id,
    /// regions, tags}.
    #[arg(long, value_name = "FILE", requires = "aws")]
    pub aws_accounts: Option<PathBuf>,
    /// Scan every ACTIVE account of the organization (credentials of its management account or of a
    /// delegated administrator), assuming --aws-role-name in each.
    #[arg(long, requires = "aws", conflicts_with = "aws_accounts")]
    pub aws_organization: bool,
    /// With --aws-organization: only the accounts under this organizational unit (and its children);
    /// repeatable.
    #[arg(long = "aws-ou", value_name = "ID", requires = "aws_organization")]
    pub aws_ous: Vec<String>,
    /// The role assumed in each account of the organization (deploy/aws/ holds its policy).
    #[arg(long, value_name = "NAME", requires = "aws_organization")]
    pub aws_role_name: Option<String>,
    /// The external id the audit role's trust policy asks for.
    #[arg(long, value_name = "ID", requires = "aws")]
    pub aws_external_id: Option<String>,
    /// Regions to scan, comma-separated, or `all` (every region enabled for each account).
    #[arg(long, value_name = "all|LIST", value_delimiter = ',', requires = "aws")]
    pub aws_regions: Vec<String>,
    /// Accounts scanned at once.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "aws")]
    pub aws_account_concurrency: usize,
    /// Regions of one account scanned at once.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "aws")]
    pub aws_region_concurrency: usize,
    /// Fleets: seconds one collector of one account or region may take (then a gap naming it).
    #[arg(long, value_name = "SECONDS", default_value_t = 600, requires = "aws")]
    pub aws_target_timeout: u64,
    /// Fleets: seconds the whole fleet may take; what finished is kept, each unfinished account a gap.
    #[arg(long, value_name = "SECONDS", default_value_t = 21600, requires = "aws")]
    pub aws_fleet_timeout: u64,
    /// Only this share of the targets, K/N with K from 0 to N-1 (a stable hash of the account id or
    /// kube context): N processes, or the pods of an Indexed Job, share one organization.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<compliance_core::Shard>,
    #[command(flatten)]
    #[serde(flatten)]
    pub aws_connection: AwsArgs,
    /// Keys of a configuration file that are not settings (reported as errors).
    #[arg(skip)]
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
    /// Terraform: a folder (each folder of `.tf` files is a module), a `.tf` file, or a plan in JSON
    /// (`terraform show -json PLAN > plan.json`); repeatable. Judged with the S3 checks.
    #[arg(long = "terraform", value_name = "PATH")]
    pub terraform: Vec<PathBuf>,
    /// Rego policy file or folder (`.rego`, recursive); repeatable. Each policy is a check, judged on
    /// manifests and live objects (as admission requests). One that does not compile is a gap.
    #[arg(long = "rego-policy", value_name = "PATH")]
    pub rego_policies: Vec<PathBuf>,
    /// Milliseconds one Rego evaluation may take before it is stopped (error evidence).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub rego_eval_limit_ms: u64,
    /// Labels `k8s.workload.required_labels` demands, comma-separated.
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub k8s_required_labels: Vec<String>,
    /// Only checks matching these patterns (`*` wildcard); repeatable.
    #[arg(long = "check", value_name = "PATTERN")]
    pub checks: Vec<String>,
    /// Score against this framework; repeatable (default: every built-in one).
    #[arg(long = "framework", value_name = "ID")]
    pub frameworks: Vec<String>,
    /// Also score against a framework of your own (YAML or JSON, the format of the built-in ones); repeatable.
    #[arg(long = "framework-file", value_name = "FILE")]
    pub framework_files: Vec<PathBuf>,
    /// Waivers file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Report formats to write; repeatable: json (the versioned report), markdown, html (for people),
    /// junit, sarif (for CI and code review), oscal (for GRC tools), csv, prometheus (textfile collector),
    /// policyreport and openreports (Kubernetes policy reports), ocsf (OCSF Compliance Findings).
    #[arg(long = "format", value_parser = format_parser(), default_value = "json")]
    pub formats: Vec<compliance_report::Format>,
    /// Folder for the report files.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Sign every report file with this private key (PKCS#8 PEM): a DSSE envelope
    /// `compliance_report_<time>.dsse.json` beside them, checked by `compliance report verify`.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// A previous JSON report: the report then says what changed since (new failures, resolved, new gaps).
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// Exit 1 when an unwaived failure at or above this severity is found.
    #[arg(long, value_enum, default_value_t = FailOn::None)]
    pub fail_on: FailOn,
    /// Also exit 1 when anything could not be judged (gaps, error evidence).
    #[arg(long)]
    pub fail_on_gaps: bool,
    /// Seconds one collector may run.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// No progress lines on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How to reach AWS.
#[derive(Debug, Clone, Args, Deserialize)]
#[serde(default)]
pub struct AwsArgs {
    /// AWS endpoint URL (an emulator, a VPC endpoint); S3 then uses path-style addressing.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// Attempts per AWS call on throttling and transient errors (exponential backoff).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub aws_max_attempts: u32,
    /// Seconds one AWS call attempt may take (connecting: at most 5): an endpoint that never answers is a gap.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub aws_call_timeout: u64,
}

/// `remediate` arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RemediateArgs {
    /// Plans the monitor stored: list, show, approve, reject.
    #[command(subcommand)]
    pub stored: Option<StoredPlanCommand>,
    /// The JSON report whose failures to fix.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Make the changes (default: dry run, which changes nothing).
    #[arg(long)]
    pub apply: bool,
    /// Approve high-risk plans (they are refused otherwise).
    #[arg(long, requires = "apply")]
    pub yes: bool,
    /// Only checks matching these patterns; repeatable.
    #[arg(long = "check", value_name = "PATTERN")]
    pub checks: Vec<String>,
    /// Write fixed manifests into this folder (default: beside the input, as NAME.fixed.yaml).
    #[arg(long, value_name = "DIR")]
    pub manifest_out: Option<PathBuf>,
    /// Overwrite input manifests instead of writing new files.
    #[arg(long, requires = "apply", conflicts_with = "manifest_out")]
    pub in_place: bool,
    /// Kubeconfig context for live objects.
    #[arg(long, value_name = "NAME")]
    pub k8s_context: Option<String>,
    #[command(flatten)]
    pub aws_connection: AwsArgs,
    /// SSE-KMS key for default encryption fixes (default: SSE-S3).
    #[arg(long, value_name = "KEY")]
    pub aws_kms_key: Option<String>,
    /// `runAsUser` set where a workload would run as root.
    #[arg(long, value_name = "UID", default_value_t = 10001)]
    pub run_as_user: i64,
    /// Pod `fsGroup` set where missing, so a non-root process can write its volumes.
    #[arg(long, value_name = "GID", default_value_t = 20001)]
    pub fs_group: i64,
    /// Memory limit set where missing.
    #[arg(long, value_name = "QUANTITY", default_value = "512Mi")]
    pub memory_limit: String,
    /// CPU limit set where missing.
    #[arg(long, value_name = "QUANTITY", default_value = "500m")]
    pub cpu_limit: String,
    /// Folder for the remediation record (compliance_remediation_YYYYMMDD_HHMMSS.json, UTC).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Kubernetes' `failurePolicy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailurePolicyArg {
    /// Deny what cannot be judged in time (fail-closed).
    Fail,
    /// Allow it, with a warning (fail-open).
    Ignore,
}

/// `webhook` arguments.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// TLS certificate chain (PEM); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// TLS private key (PEM); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,
    /// Demand a client certificate signed by this CA (PEM): the API server's (set in its
    /// AdmissionConfiguration), so that nobody else can send reviews or skew the metrics.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Where /metrics (and /healthz) are served, over plain HTTP, apart from the webhook's port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9465")]
    pub metrics_listen: std::net::SocketAddr,
    /// Connections served at once; more wait in the listen queue.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Objects whose latest decision is kept for /metrics; the least recently reviewed go first.
    #[arg(long, value_name = "N", default_value_t = compliance_k8s::webhook::DEFAULT_MAX_TRACKED_OBJECTS)]
    pub max_tracked_objects: usize,
    /// Rego policy file or folder; repeatable. One that does not compile is reported and skipped.
    #[arg(long = "rego-policy", value_name = "PATH")]
    pub rego_policies: Vec<PathBuf>,
    /// Milliseconds one Rego evaluation may take.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub rego_eval_limit_ms: u64,
    /// Failures at or above this severity deny; lower ones are warnings.
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    pub deny_severity: Severity,
    /// Never deny: failures become warnings.
    #[arg(long)]
    pub warn_only: bool,
    /// Namespace whose requests are allowed unjudged; repeatable.
    #[arg(long = "exempt-namespace", value_name = "NS")]
    pub exempt_namespaces: Vec<String>,
    /// What to answer when a request cannot be judged in time.
    #[arg(long, value_enum, default_value_t = FailurePolicyArg::Fail)]
    pub failure_policy: FailurePolicyArg,
    /// Milliseconds to judge one request; keep it below the webhook's timeoutSeconds.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub timeout_ms: u64,
    /// Only checks matching these patterns; repeatable.
    #[arg(long = "check", value_name = "PATTERN")]
    pub checks: Vec<String>,
    /// Labels `k8s.workload.required_labels` demands, comma-separated.
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub k8s_required_labels: Vec<String>,
}

impl Default for ScanArgs {
    /// The defaults of `compliance scan`'s flags.
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            scan: ScanArgs,
        }
        match Defaults::try_parse_from(["scan"]) {
            Ok(d) => d.scan,
            // The flags' defaults parse by construction (a test runs this).
            Err(e) => unreachable_defaults(&e),
        }
    }
}

/// A configuration file may give one context as a string, or a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

#[allow(clippy::panic)] // only reachable if a flag's default value were invalid, which a test rules out
fn unreachable_defaults(e: &clap::Error) -> ScanArgs {
    panic!("scan flags' defaults do not parse: {e}")
}

impl Default for AwsArgs {
    fn default() -> Self {
        Self { aws_endpoint_url: None, aws_region: None, aws_max_attempts: 5, aws_call_timeout: 60 }
    }
}

/// `monitor` arguments.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The configuration file (YAML): scan, interval, store, listen, alerts, remediation, retention.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Store URL, instead of the file's (`sqlite://PATH` or `postgres://user:password@host/db`).
    #[arg(long, value_name = "URL", env = "COMPLIANCE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Address of /metrics and /healthz, instead of the file's.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Stop after this many scans (for cron jobs and tests); default: run until SIGTERM.
    #[arg(long, value_name = "N")]
    pub cycles: Option<u64>,
    /// Only this share of the targets (K/N), instead of the file's `scan.shard`: the pods of an
    /// Indexed Job pass `$(JOB_COMPLETION_INDEX)/N`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<compliance_core::Shard>,
}

/// `evidence` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Walk the chain of stored records; exit 1 at the first record changed, removed or reordered.
    /// With --public-key, also check the signed checkpoints: a chain rewritten as a whole is caught.
    Verify {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Check the chain against its signed checkpoints, with this public key (PEM) or keyring (YAML).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Copies of the checkpoints kept outside the database (JSON Lines, as the monitor writes them).
        #[arg(long, value_name = "FILE", requires = "public_key")]
        checkpoints: Option<PathBuf>,
    },
    /// Write a self-contained, signed evidence package for a framework and a period: reports,
    /// evidence per control, the chain segment, waivers, remediation, a manifest, a DSSE envelope.
    Export {
        /// The store.
        #[arg(
            long,
            value_name = "URL",
            env = "COMPLIANCE_STORE",
            hide_env_values = true,
            default_value = "sqlite://compliance-evidence.db"
        )]
        store: String,
        /// Framework id (soc2, iso27001, pci-dss).
        #[arg(long, value_name = "ID")]
        framework: String,
        /// Only these controls (repeatable); default: every control of the framework.
        #[arg(long = "control", value_name = "ID")]
        controls: Vec<String>,
        /// Runs that started from this date or time, inclusive (2026-01-01 or RFC 3339).
        #[arg(long)]
        from: String,
        /// Until this date or time, exclusive.
        #[arg(long)]
        to: String,
        /// The package folder (new, or empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Sign the package with this private key (PKCS#8 PEM). Without it the package is written unsigned.
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// Also write the package as one gzip-compressed tar file (a new file; unpack it to verify).
        #[arg(long, value_name = "FILE")]
        archive: Option<PathBuf>,
    },
    /// Verify an evidence package offline: signature, every file's digest, the chain segment, and
    /// that every evidence in its reports is in the chain. Exit 1 naming the first problem.
    VerifyPackage {
        /// The package folder.
        dir: PathBuf,
        /// The signer's public key (PEM), or a keyring YAML file of keys with their validity periods
        /// (the monitor's checkpoint key too, when it is another).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Checkpoint copies kept outside the database (JSON Lines): those of the package's records must match.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// Every run must be covered by a verified checkpoint (refuses a chain whose checkpoints were stripped).
        #[arg(long)]
        require_checkpoints: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// The stored runs (those that started in a time range, with --from/--to).
    Runs {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// From this date or time, inclusive (2026-01-01 or RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Until this date or time, exclusive.
        #[arg(long)]
        to: Option<String>,
    },
    /// The latest status per check and resource.
    Latest(StoreArg),
    /// Every stored evidence about one resource.
    History {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// The resource id.
        resource: String,
    },
    /// The evidence behind one control between two dates (what an auditor asks for).
    Control {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Framework id (soc2, iso27001, pci-dss, or your own).
        framework: String,
        /// Control id (CC6.1).
        control: String,
        /// From this date or time, inclusive (2026-01-01 or RFC 3339).
        #[arg(long)]
        from: String,
        /// Until this date or time, exclusive.
        #[arg(long)]
        to: String,
    },
}

/// Which store.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// `sqlite://PATH` or `postgres://user:password@host/db`.
    #[arg(
        long,
        value_name = "URL",
        env = "COMPLIANCE_STORE",
        hide_env_values = true,
        default_value = "sqlite://compliance-evidence.db"
    )]
    pub store: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Plans stored by `compliance monitor`.
#[derive(Debug, Subcommand)]
pub enum StoredPlanCommand {
    /// Every stored plan (or those in one state).
    List {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Only plans in this state.
        #[arg(long, value_enum)]
        state: Option<PlanStateArg>,
    },
    /// One plan: what it changes, its risk, its decision and outcome.
    Show {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// The plan id.
        id: String,
    },
    /// Approve a pending plan and apply it: the approval (who, when) and the
    /// outcome, re-verified, are stored.
    Approve(DecisionArgs),
    /// Reject a pending plan; nothing is changed.
    Reject(DecisionArgs),
}

/// Plan states, for `--state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanStateArg {
    /// Waiting for a decision.
    Pending,
    /// Approved, not applied.
    Approved,
    /// Rejected.
    Rejected,
    /// Applied.
    Applied,
    /// Applying failed.
    Failed,
}

/// `remediate approve|reject` arguments.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// The plan id.
    pub id: String,
    /// Who decides (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Why (a change ticket, a reason).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Kubeconfig context for live objects.
    #[arg(long, value_name = "NAME")]
    pub k8s_context: Option<String>,
    #[command(flatten)]
    pub aws_connection: AwsArgs,
}
