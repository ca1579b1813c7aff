//! `ipamclaim-webhook`: parses the command line, runs one subcommand, reports its error.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use std::io::{IsTerminal as _, Write as _};

use ipamclaim_webhook::admission::rules::defaulting::Defaults;
use ipamclaim_webhook::admission::{self, model::types};
use ipamclaim_webhook::{certs, cluster, replay, serve};

use crate::cli::{Cli, Command, ReplayArgs, ReplayOutput, ReplayWebhook};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // For replay, a setup failure (a bad --ca, say) is "could not be sent": status 2.
    let failure = match cli.command {
        Command::Replay(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            failure
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            // Dropped last, whether serving ends well or not: the lines still queued (the last
            // ones of a SIGTERM, or the error's) are written out before the process exits.
            let logs = cli::init_logging(args.log_format)?;
            let mut cfg = args.config()?;
            cfg.log_dropped = logs.dropped();
            let served = actix_web::rt::System::new().block_on(serve::run(cfg));
            drop(logs);
            served.context("serve")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Certs(args) => {
            let generated = certs::generate(&args.options())?;
            generated.write_to(&args.out)?;
            eprintln!(
                "wrote {}, {} and {} to {}",
                certs::CA_FILE,
                certs::CERT_FILE,
                certs::KEY_FILE,
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(args) => replay(args),
        Command::Crd => {
            let yaml = yaml_serde::to_string(&types::crd())
                .context("cannot serialise the CustomResourceDefinition")?;
            match std::io::stdout().lock().write_all(yaml.as_bytes()) {
                // `crd | head` closing the pipe early is not a failure of `crd`.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(e).context("cannot write to stdout")
                }
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// `replay`: every input judged, results on stdout, errors and a summary on stderr, and the
/// exit status 0 (all allowed), 1 (one denied) or 2 (one could not be read, parsed or sent).
fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut options = admission::Options {
        field_validation: args.field_validation.into(),
        defaults: args.defaults.defaults()?,
        enforcement: args.enforcement.into(),
        ..admission::Options::default()
    };
    if args.check_networks {
        let nads = replay::read_networks(&args.networks)?;
        let counts = nads.counts();
        eprintln!(
            "replay: --networks: {} NetworkAttachmentDefinitions of {} networks ({} without address rules, {} with NADs that disagree, {} configs that do not parse)",
            counts.nads, counts.networks, counts.unruled, counts.disagreeing, counts.invalid
        );
        options.check_networks = Some(Arc::new(cluster::networks::SharedNetworks::of(nads)));
    }
    let mut transport: Box<dyn replay::Transport> = match (&args.server, &args.ca) {
        (Some(url), Some(ca)) => {
            if options.defaults != Defaults::default() {
                anyhow::bail!(
                    "--default-interface and --network-label are the server's flags: with --server, the server's own defaults apply"
                );
            }
            // In process, replay checks fields strictly; a server checks them as its own
            // --field-validation says (Warn unless told otherwise).
            eprintln!(
                "replay: judged by {url} with the server's flags (serve defaults to --field-validation Warn, in-process replay to Strict)"
            );
            let client = args.client_cert.as_deref().zip(args.client_key.as_deref());
            Box::new(replay::Remote::new(url, ca, client)?)
        }
        _ if args.unique_addresses => {
            let existing = replay::read_existing(&args.existing)?;
            let claims = Arc::new(cluster::SharedIndex::of(existing));
            Box::new(replay::InProcess::with_claims(options, claims))
        }
        _ => Box::new(replay::InProcess::new(options)),
    };
    let mode = match args.webhook {
        ReplayWebhook::Validate => replay::Mode::Validate,
        ReplayWebhook::Mutate => replay::Mode::Mutate,
        ReplayWebhook::Chain => replay::Mode::Chain,
    };
    let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        ReplayOutput::Text
    } else {
        ReplayOutput::Json
    });

    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut tally = replay::Tally::default();
    let mut write_error: Option<std::io::Error> = None;
    replay::visit_inputs(&args.paths, &mut std::io::stdin().lock(), &mut |input| {
        let doc = match input {
            replay::Input::Error(e) => {
                eprintln!("error: {}: {}", e.source, e.message);
                tally.errors += 1;
                return;
            }
            replay::Input::Document(doc) => doc,
        };
        let outcome = replay::run_one(&doc, mode, transport.as_mut());
        tally.add(&outcome);
        if let Err(e) = &outcome.answer {
            let item = outcome.item.map(|i| format!(".items[{i}]"));
            let (source, index) = (&outcome.source, outcome.index);
            eprintln!(
                "error: {source} document {index}{}: {e}",
                item.unwrap_or_default()
            );
        }
        let text = match output {
            ReplayOutput::Json => replay::json_line(&outcome).map(|l| l + "\n"),
            ReplayOutput::Text => Some(replay::text_lines(&outcome, Some(&doc))),
        };
        if let (Some(text), None) = (text, &write_error) {
            if let Err(e) = stdout.write_all(text.as_bytes()) {
                write_error = Some(e);
            }
        }
    });
    if let Some(e) = write_error {
        return Err(e).context("cannot write to stdout");
    }
    stdout.flush().context("cannot write to stdout")?;

    eprintln!("{}", tally.summary());
    Ok(ExitCode::from(tally.exit_code()))
}
