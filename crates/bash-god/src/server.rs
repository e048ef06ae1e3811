//! The MCP tools of bash-god on top of the analysis, policy, executor and history modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_server_runtime::{ServerContext, ToolError, confine_path, run_blocking};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exec::{
    self, ExecError, ExecOptions, ExecOutcome, ExecRequest, Executor, SandboxReport,
};
use crate::findings::{self, Finding, Optimized};
use crate::history::{History, HistoryError, Limits as HistoryLimits, Suggestion};
use crate::parse::{self, Nesting, ParseError, Script};
use crate::policy;
use crate::risk::{self, RiskLevel, RiskReason};
use crate::system::{self, SystemInfo};

/// Timeout of `execute_command` when the caller gives none.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Time kept between a command's own timeout and the server's per-tool timeout, so the
/// command is stopped (and its outcome reported) before the whole call is abandoned.
const TOOL_TIMEOUT_MARGIN: Duration = Duration::from_secs(1);
const DEFAULT_SUGGESTIONS: usize = 5;
const MAX_SUGGESTIONS: usize = 50;

/// Startup options beyond the common ones.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Enables `execute_command`.
    pub allow_exec: bool,
    /// Journal file of the execution history (read at start, one line appended per run).
    pub history: Option<PathBuf>,
    /// How much history is kept.
    pub history_limits: HistoryLimits,
    /// How commands are contained.
    pub exec: ExecOptions,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommandInput {
    /// The bash command line or script.
    pub command: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecuteInput {
    /// The bash command line or script to run with `bash -c`.
    pub command: String,
    /// Working directory, inside the server's roots (relative paths resolve against the
    /// first root; default: the first root).
    pub cwd: Option<String>,
    /// Timeout in milliseconds (default 30000; capped just below the server's tool timeout).
    /// On timeout every process the command started is killed.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SuggestInput {
    /// The command to find similar past executions for.
    pub command: String,
    /// How many suggestions (default 5, at most 50).
    pub k: Option<usize>,
}

/// One simple command found in the program.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandReport {
    /// The command as normalized by the parser.
    pub text: String,
    /// Command name (`null` for a bare assignment such as `X=1`).
    pub name: Option<String>,
    /// Arguments with quotes removed (expansions kept as written).
    pub args: Vec<String>,
    /// Constructs the command is nested in, outermost first.
    pub nesting: Vec<Nesting>,
    /// Index of the pipeline it belongs to and its position in it.
    pub pipeline: usize,
    pub stage: usize,
    /// The pipeline runs in the background (`&`).
    pub background: bool,
    pub risk: RiskLevel,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AnalyzeReport {
    /// Overall risk: the highest of all reasons (`safe` when there are none).
    pub risk: RiskLevel,
    pub reasons: Vec<RiskReason>,
    /// Every simple command, including those inside substitutions, subshells and functions.
    pub commands: Vec<CommandReport>,
    pub findings: Vec<Finding>,
    /// Whether the policy would let `execute_command` run it (when execution is enabled).
    /// The policy refuses what is rated dangerous; it is a first filter, not the boundary.
    pub allowed_by_policy: bool,
    /// Why the policy would refuse it.
    pub policy_refusals: Vec<String>,
    /// Parts whose behaviour the analysis cannot see (code computed at run time, fed to a
    /// shell or interpreter, or in a script file): the risk and the policy verdict do not
    /// cover them. They are not refused for that; the execution sandbox contains them.
    pub unanalyzed: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecuteReport {
    pub command: String,
    /// Canonical working directory the command ran in.
    pub cwd: String,
    /// Timeout applied, in milliseconds.
    pub timeout_ms: u64,
    /// Risk of the command (never `dangerous`: those are refused).
    pub risk: RiskLevel,
    pub reasons: Vec<RiskReason>,
    #[serde(flatten)]
    pub outcome: ExecOutcome,
    /// Which protections the run had.
    pub sandbox: SandboxReport,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SuggestReport {
    /// Executions recorded so far.
    pub history_size: usize,
    pub suggestions: Vec<Suggestion>,
}

#[derive(Clone)]
pub struct BashGod {
    tool_router: ToolRouter<Self>,
    context: ServerContext,
    allow_exec: bool,
    executor: Arc<Option<Executor>>,
    history: Arc<History>,
}

impl std::fmt::Debug for BashGod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BashGod")
            .field("allow_exec", &self.allow_exec)
            .field("history", &self.history)
            .finish()
    }
}

/// Parses off the async workers (the parse may take a helper process and seconds).
async fn parse_input(command: String) -> Result<Script, ToolError> {
    run_blocking(move |_| {
        parse::parse(&command).map_err(|e: ParseError| ToolError::invalid_input(e.to_string()))
    })
    .await
}

fn history_error(e: HistoryError) -> ToolError {
    ToolError::failed(e.to_string())
}

/// The analysis `analyze_command` returns; also used to vet `execute_command`.
pub fn analyze(command: &str) -> Result<AnalyzeReport, ParseError> {
    let script = parse::parse(command)?;
    let assessment = risk::assess(&script);
    let verdict = policy::check(&script, &assessment);
    let commands = script
        .commands
        .iter()
        .map(|c| CommandReport {
            text: c.text.clone(),
            name: c.words.first().map(|w| w.literal.clone()),
            args: c.args().iter().map(|w| w.literal.clone()).collect(),
            nesting: c.nesting.clone(),
            pipeline: c.pipeline,
            stage: c.stage,
            background: script.pipelines[c.pipeline].background,
            risk: assessment
                .reasons
                .iter()
                .filter(|r| r.command == c.text)
                .map(|r| r.level)
                .max()
                .unwrap_or(RiskLevel::Safe),
        })
        .collect();
    Ok(AnalyzeReport {
        risk: assessment.level,
        findings: findings::lint(command, &script),
        reasons: assessment.reasons,
        commands,
        allowed_by_policy: verdict.is_ok(),
        policy_refusals: verdict.err().map(|r| r.reasons).unwrap_or_default(),
        unanalyzed: policy::unanalyzed(&script),
    })
}

#[tool_router]
impl BashGod {
    /// A server over `context`; fails when the history file cannot be read.
    pub fn new(context: ServerContext, options: &Options) -> Result<Self, HistoryError> {
        let history = History::open(options.history.as_deref(), options.history_limits)?;
        match parse::helper::contain_parsing() {
            Ok(timeout) => tracing::info!(?timeout, "each parse runs in a helper process"),
            Err(reason) => {
                tracing::warn!("parsing runs inside the server, without a time limit: {reason}")
            }
        }
        // Probing costs a few milliseconds; only a server that executes needs it.
        let executor = options.allow_exec.then(|| Executor::new(&options.exec));
        if let Some(executor) = &executor {
            match executor.containment {
                exec::Containment::Full(_) => {
                    tracing::info!("exec sandbox: {}", executor.describe());
                }
                _ => tracing::warn!("exec sandbox: {}", executor.describe()),
            }
        }
        tracing::info!(
            allow_exec = options.allow_exec,
            history_records = history.len(),
            snapshot = ?options.history,
            "bash-god ready"
        );
        Ok(Self {
            tool_router: Self::tool_router(),
            context,
            allow_exec: options.allow_exec,
            executor: Arc::new(executor),
            history: Arc::new(history),
        })
    }

    /// Parses a bash command with a real bash parser and reports every simple command
    /// (including those inside $( ), backticks, <( ), subshells, pipelines, functions,
    /// if/while/for/case), its risk (safe / caution / dangerous) with reasons,
    /// shellcheck-style findings with suggested rewrites, and whether the execution policy
    /// would allow it. Nothing is executed.
    #[tool(annotations(
        title = "Analyze a bash command",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn analyze_command(
        &self,
        Parameters(input): Parameters<CommandInput>,
    ) -> Result<Json<AnalyzeReport>, ToolError> {
        run_blocking(move |_| {
            analyze(&input.command).map_err(|e| ToolError::invalid_input(e.to_string()))
        })
        .await
        .map(Json)
    }

    /// Rewrites a bash command with the safe shellcheck-style fixes (useless cat,
    /// grep | wc -l, for f in $(ls), backticks, unquoted variables whose value is provably
    /// one plain word) and lists each change; findings whose fix could change the meaning
    /// (e.g. `cc $CFLAGS`, where splitting is intended) are returned as `remaining`.
    /// Nothing is executed.
    #[tool(annotations(
        title = "Optimize a bash command",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn optimize_command(
        &self,
        Parameters(input): Parameters<CommandInput>,
    ) -> Result<Json<Optimized>, ToolError> {
        run_blocking(move |_| {
            findings::optimize(&input.command).map_err(|e| ToolError::invalid_input(e.to_string()))
        })
        .await
        .map(Json)
    }

    /// Runs a bash command, only if the server was started with --allow-exec. First filter:
    /// a program with any command rated dangerous (nested substitutions included) is refused
    /// before anything runs. The boundary is the sandbox, which holds whatever the analysis
    /// missed: the command can write only inside the roots (and a private TMPDIR), read only
    /// the roots and system locations, has no network (unless the server allows it), no
    /// privileges, rlimits, and every process it starts is killed when it ends, times out or
    /// is cancelled. The result says which protections were active. `bash -c`, stdin
    /// closed, environment PATH, HOME, LANG and TMPDIR only, cwd inside the roots, capped
    /// output. The outcome is recorded in the history used by suggest_from_history.
    #[tool(annotations(
        title = "Execute a bash command",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn execute_command(
        &self,
        Parameters(input): Parameters<ExecuteInput>,
    ) -> Result<Json<ExecuteReport>, ToolError> {
        if !self.allow_exec {
            return Err(ToolError::denied(
                "command execution is disabled on this server; restart bash-god with \
                 --allow-exec to enable execute_command (analyze_command and optimize_command \
                 work without it)",
            ));
        }
        let Some(executor) = self.executor.as_ref().as_ref() else {
            return Err(ToolError::failed(
                "execution is enabled but has no executor",
            ));
        };
        if let exec::Containment::Unavailable(reason) = &executor.containment {
            return Err(ToolError::denied(exec::unavailable_message(reason)));
        }
        let script = parse_input(input.command.clone()).await?;
        let assessment = risk::assess(&script);
        if let Err(refusal) = policy::check(&script, &assessment) {
            tracing::warn!(command = %input.command, "execution refused by policy");
            return Err(ToolError::denied(refusal.to_string()));
        }
        let roots = &self.context.roots;
        let cwd = match &input.cwd {
            Some(cwd) => confine_path(cwd, roots)?,
            None => roots.first().to_owned(),
        };
        if !cwd.is_dir() {
            return Err(ToolError::invalid_input(format!(
                "cwd {} is not a directory; pass a directory inside the roots",
                cwd.display()
            )));
        }
        let timeout = self.exec_timeout(input.timeout_ms)?;
        let request = ExecRequest {
            command: input.command.clone(),
            cwd: cwd.clone(),
            home: roots.first().to_owned(),
            roots: roots.iter().map(Path::to_path_buf).collect(),
            timeout,
            // Both streams and the JSON around them must fit the server's output cap.
            max_stream_bytes: self.context.limits.max_output_bytes / 4,
        };
        tracing::info!(command = %request.command, cwd = %cwd.display(), ?timeout, "executing");
        let cancel = mcp_server_runtime::current_cancel_flag();
        let (outcome, sandbox) = executor
            .run(&request, cancel.cancelled())
            .await
            .map_err(|e| match e {
                ExecError::Refused(message) => ToolError::denied(message),
                ExecError::Failed(message) => ToolError::failed(format!(
                    "{message}; is bash installed (e.g. /usr/bin/bash) on this host?"
                )),
            })?;
        if cancel.is_cancelled() {
            return Err(ToolError::cancelled());
        }
        self.remember(&request.command, &cwd, &outcome).await;
        Ok(Json(ExecuteReport {
            command: request.command,
            cwd: cwd.display().to_string(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            risk: assessment.level,
            reasons: assessment.reasons,
            outcome,
            sandbox,
        }))
    }

    /// Reports OS, kernel, CPU model, core counts, memory, load average and uptime, and
    /// which CPU variants of the mcp-foundry binaries (e.g. znver4) this CPU can run.
    #[tool(annotations(
        title = "System information",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn system_info(&self) -> Result<Json<SystemInfo>, ToolError> {
        run_blocking(|_| system::collect().map_err(ToolError::failed))
            .await
            .map(Json)
    }

    /// Finds the past executions most similar to a command (from the learning store of
    /// executed commands), with their outcomes: exit code, duration, timeout.
    #[tool(annotations(
        title = "Suggest from execution history",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn suggest_from_history(
        &self,
        Parameters(input): Parameters<SuggestInput>,
    ) -> Result<Json<SuggestReport>, ToolError> {
        if input.command.trim().is_empty() {
            return Err(ToolError::invalid_input(
                "command is empty; pass the command to find similar past executions for",
            ));
        }
        let k = input.k.unwrap_or(DEFAULT_SUGGESTIONS);
        if k == 0 || k > MAX_SUGGESTIONS {
            return Err(ToolError::invalid_input(format!(
                "k = {k} is out of range; ask for 1 to {MAX_SUGGESTIONS} suggestions"
            )));
        }
        let history = self.history.clone();
        run_blocking(move |_| {
            Ok(SuggestReport {
                history_size: history.len(),
                suggestions: history.suggest(&input.command, k).map_err(history_error)?,
            })
        })
        .await
        .map(Json)
    }
}

impl BashGod {
    /// The timeout for one execution: the caller's (or the default), kept below the
    /// server's tool timeout so the command is killed and reported before the call is dropped.
    fn exec_timeout(&self, timeout_ms: Option<u64>) -> Result<Duration, ToolError> {
        let ceiling = self
            .context
            .limits
            .tool_timeout
            .saturating_sub(TOOL_TIMEOUT_MARGIN)
            .max(Duration::from_millis(100));
        match timeout_ms {
            Some(0) => Err(ToolError::invalid_input(
                "timeout_ms must be at least 1; omit it for the default of 30000",
            )),
            Some(ms) => Ok(Duration::from_millis(ms).min(ceiling)),
            None => Ok(DEFAULT_EXEC_TIMEOUT.min(ceiling)),
        }
    }

    /// Records the outcome (one line appended to the journal, off the async workers); a
    /// failure here is logged, not reported as a failed execution (the command did run).
    async fn remember(&self, command: &str, cwd: &Path, outcome: &ExecOutcome) {
        let history = self.history.clone();
        let (command, cwd, outcome) = (command.to_owned(), cwd.to_owned(), outcome.clone());
        match tokio::task::spawn_blocking(move || history.record(&command, &cwd, &outcome)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cannot record the execution in the history: {e}"),
            Err(e) => tracing::warn!("the history writer failed: {e}"),
        }
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "bash-god",
    instructions = "Bash command tools. analyze_command parses a command with a real bash \
parser and reports every command in it, a risk level with reasons and shellcheck-style \
findings; optimize_command applies the safe rewrites. execute_command (only when the server \
was started with --allow-exec) refuses commands rated dangerous and runs the rest in a kernel \
sandbox: writes only inside the roots, no network unless allowed, nothing outlives the call. system_info describes the host; suggest_from_history finds similar \
past executions and how they ended."
)]
impl ServerHandler for BashGod {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyze_reports_commands_risk_and_policy() {
        let report = analyze("cat f | grep x; echo $(rm -rf /)").unwrap();
        assert_eq!(report.risk, RiskLevel::Dangerous);
        assert!(!report.allowed_by_policy);
        let rm = report
            .commands
            .iter()
            .find(|c| c.name.as_deref() == Some("rm"))
            .unwrap();
        assert_eq!(rm.nesting, [Nesting::CommandSubstitution]);
        assert_eq!(rm.risk, RiskLevel::Dangerous);
        assert_eq!(report.findings[0].code, "SC2002");
        let safe = analyze("ls -la").unwrap();
        assert_eq!(safe.risk, RiskLevel::Safe);
        assert!(safe.allowed_by_policy && safe.reasons.is_empty());
    }
}
