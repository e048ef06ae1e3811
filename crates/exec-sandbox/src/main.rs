//! `exec-sandbox`: run one command contained, as bash-god's `execute_command` would.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Parser)]
#[command(
    name = "exec-sandbox",
    version,
    about = "Run a command contained by Landlock, seccomp, namespaces and rlimits"
)]
struct Args {
    /// Directory the command may write in (repeatable; the first is the working directory).
    #[arg(long = "root", value_name = "DIR", required_unless_present = "probe")]
    roots: Vec<PathBuf>,
    /// Extra read-only directory (repeatable).
    #[arg(long = "read-only", value_name = "DIR")]
    readable: Vec<PathBuf>,
    /// Let the command use the network.
    #[arg(long)]
    allow_network: bool,
    /// Run with whatever protections the kernel offers instead of refusing.
    #[arg(long)]
    best_effort: bool,
    /// Only report which protections this kernel provides.
    #[arg(long)]
    probe: bool,
    /// The command and its arguments.
    #[arg(last = true, required_unless_present = "probe")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    exec_sandbox::run_helper_if_requested();
    let args = <Args as clap::Parser>::parse();
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("exec-sandbox: {message}");
            ExitCode::from(125)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let sandbox = exec_sandbox::Sandbox::current().map_err(|e| e.to_string())?;
    if args.probe {
        let protections = sandbox
            .probe(args.allow_network)
            .map_err(|e| format!("sandbox unavailable: {e}"))?;
        println!("{}", protections.summary());
        return Ok(ExitCode::SUCCESS);
    }
    let roots: Vec<PathBuf> = args
        .roots
        .iter()
        .map(|r| {
            r.canonicalize()
                .map_err(|e| format!("--root {}: {e}", r.display()))
        })
        .collect::<Result<_, _>>()?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or("no command given; pass it after --")?;
    let spec = exec_sandbox::Spec {
        program: program.clone(),
        args: rest.to_vec(),
        cwd: roots[0].clone(),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), roots[0].display().to_string()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        writable: roots,
        readable: args.readable,
        network: args.allow_network,
        limits: exec_sandbox::Limits::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut run = sandbox
            .spawn(spec, !args.best_effort)
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("exec-sandbox: {}", run.protections.summary());
        let (mut out, mut err) = (run.stdout.take(), run.stderr.take());
        let copy_out = async {
            if let Some(out) = out.as_mut() {
                let _ = tokio::io::copy(out, &mut tokio::io::stdout()).await;
            }
        };
        let copy_err = async {
            if let Some(err) = err.as_mut() {
                let _ = tokio::io::copy(err, &mut tokio::io::stderr()).await;
            }
        };
        let (exit, (), ()) = tokio::join!(run.wait(), copy_out, copy_err);
        Ok(match exit.map_err(|e| e.to_string())? {
            Some(exec_sandbox::Exit::Code(code)) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Some(exec_sandbox::Exit::Signal(signal)) => {
                ExitCode::from(u8::try_from(128 + signal).unwrap_or(255))
            }
            None => ExitCode::from(137),
        })
    })
}
