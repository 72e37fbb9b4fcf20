use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use tfdrift::cli::args::{Cli, Command, HashArgs, OutputFormat};
use tfdrift::cli::hash;
use tfdrift::cli::manifest::Manifests;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hash(args) => run_hash(&args),
        Command::Run(args) => tfdrift::operator::run::main(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_hash(args: &HashArgs) -> anyhow::Result<()> {
    let source = args.file.display().to_string();
    let mut input = Vec::new();
    let limit = tfdrift::cli::manifest::MAX_INPUT_BYTES as u64 + 1;
    if source == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut input)
    } else {
        std::fs::File::open(&args.file).and_then(|f| f.take(limit).read_to_end(&mut input))
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
