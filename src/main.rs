//! `ipamclaim-webhook`: parses the command line, runs one subcommand, reports its error.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use ipamclaim_webhook::{certs, server, types::IPAMClaim};
use kube::CustomResourceExt as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            cli::init_logging(args.log_format)?;
            let cfg = args.config();
            actix_web::rt::System::new()
                .block_on(server::run(cfg))
                .context("serve")
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
            Ok(())
        }
        Command::Crd => {
            let yaml = yaml_serde::to_string(&IPAMClaim::crd())
                .context("cannot serialise the CustomResourceDefinition")?;
            print!("{yaml}");
            Ok(())
        }
    }
}
