use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tfdrift::cli::args::{CheckArgs, Cli, Command, HashArgs, OutputFormat};
use tfdrift::cli::manifest::Manifests;
use tfdrift::cli::{check, hash, helm, tfstate};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hash(args) => run_hash(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => args
            .config()
            .map_err(anyhow::Error::from)
            .and_then(tfdrift::operator::run::main)
            .map(|()| ExitCode::SUCCESS),
        Command::Check(args) => run_check(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let chain: &(dyn std::error::Error + 'static) = err.as_ref();
            eprintln!("error: {}", tfdrift::core::text::chain(chain));
            ExitCode::FAILURE
        }
    }
}

fn run_hash(args: &HashArgs) -> anyhow::Result<()> {
    let (Some(file), None) = (&args.file, &args.tfstate) else {
        return match &args.tfstate {
            Some(state) => run_hash_tfstate(state, args),
            None => anyhow::bail!("give -f FILE or --tfstate FILE"),
        };
    };
    let source = file.display().to_string();
    let mut input = Vec::new();
    let limit = tfdrift::cli::manifest::MAX_INPUT_BYTES as u64 + 1;
    if source == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut input)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut input))
    }
    .with_context(|| format!("cannot read {source}"))?;
    let mut manifests = Manifests::parse(&input).with_context(|| source.clone())?;
    let rules =
        hash::Ignore::new(args.ignore.defaults()?, &manifests).with_context(|| source.clone())?;

    let mut stdout = std::io::stdout().lock();
    if args.annotate {
        let notes = hash::annotate(&mut manifests, !args.no_baseline, &rules)
            .with_context(|| source.clone())?;
        print_notes(&notes);
        stdout.write_all(manifests.render()?.as_bytes())?;
        return Ok(());
    }
    let outcome = hash::hash_all(&manifests, &rules).with_context(|| source.clone())?;
    print_notes(&outcome.notes);
    match args.output {
        OutputFormat::Text => {
            for h in &outcome.hashed {
                writeln!(stdout, "{}", h.line())?;
            }
        }
        OutputFormat::Json => {
            serde_json::to_writer(&mut stdout, &outcome.hashed)?;
            writeln!(stdout)?;
        }
    }
    Ok(())
}

fn print_notes(notes: &[String]) {
    for note in notes {
        eprintln!("note: {note}");
    }
}

fn run_hash_tfstate(path: &Path, args: &HashArgs) -> anyhow::Result<()> {
    let source = tfstate::display(path);
    let input = tfstate::read_input(path)?;
    let outcome = tfstate::hash_state(&source, input, args.ignore.defaults()?)?;
    print_notes(&outcome.notes);
    let mut stdout = std::io::stdout().lock();
    match args.output {
        OutputFormat::Text => {
            for h in &outcome.hashed {
                writeln!(stdout, "{}", h.line())?;
            }
        }
        OutputFormat::Json => {
            let entries: Vec<_> = outcome.hashed.iter().map(|h| h.entry()).collect();
            serde_json::to_writer(&mut stdout, &entries)?;
            writeln!(stdout)?;
        }
    }
    if !outcome.invalid.is_empty() {
        anyhow::bail!(
            "{source}: {} instances do not describe an object: {}",
            outcome.invalid.len(),
            outcome.invalid.join("; ")
        );
    }
    Ok(())
}

/// How long `check` runs before it reports progress on stderr.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let options = check::Options {
        concurrency: usize::from(args.concurrency),
        api_timeout: args.api_timeout,
        defaults: args.ignore.defaults()?,
        rules: args.fields.rules()?,
    };
    let mut read = match &args.tfstate {
        Some(path) => {
            let source = tfstate::display(path);
            let input = tfstate::read_input(path)?;
            let read = check::read_state(&source, input)?;
            if !check::names_anything(&read) {
                print_notes(&[format!("{source} names no Kubernetes instance")]);
            }
            read
        }
        None => Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let client = tfdrift::cluster::client(args.kubeconfig.as_deref()).await?;
        if !args.helm_release.is_empty() || !read.releases.is_empty() {
            helm::expand(
                client.clone(),
                &mut read,
                &args.helm_release,
                args.api_timeout,
            )
            .await;
        }
        print_notes(&read.notes);
        let total = read.instances.len();
        let done = Arc::new(AtomicUsize::new(0));
        let progress = tokio::spawn({
            let done = done.clone();
            async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + PROGRESS_AFTER,
                    PROGRESS_AFTER,
                );
                loop {
                    tick.tick().await;
                    let n = done.load(Ordering::Relaxed);
                    eprintln!("checked {n} of {total} objects");
                }
            }
        });
        let report = check::check(client, read, &options, done).await;
        progress.abort();
        anyhow::Ok(report)
    })?;
    let mut stdout = std::io::stdout().lock();
    match args.output {
        OutputFormat::Text => stdout.write_all(report.table().as_bytes())?,
        OutputFormat::Json => {
            serde_json::to_writer(&mut stdout, &report)?;
            writeln!(stdout)?;
        }
    }
    Ok(ExitCode::from(report.exit_code(args.fail_on_unjudged)))
}
