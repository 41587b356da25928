//! `dbxport plan`: what `import` would do, object by object, without writing anything.

use super::import::{report_error, BehaviourArgs, CommonArgs};
use super::keys::{print_json, IdentityArgs};
use super::{EXIT_OK, EXIT_PROBLEMS};
use anyhow::Context;
use clap::Args as ClapArgs;
use dbxport::hints::Hint;
use dbxport::import::ledger::{self, Knowledge};
use dbxport::import::plan::{plan, Action, Mode, PlanInput};
use dbxport::import::report::render_plan;

/// Show what importing a bundle would do, without writing anything to the target.
///
/// Verifies the bundle, reads the target, and prints per object whether import would create
/// it, update it, leave it unchanged, skip it, or refuse — with the reason (an unmapped
/// principal or cluster, a conflict with an object already in the target, …). Only reads are
/// sent to the target. With an identity, secret values are compared where the target lets
/// them be read.
///
/// Exit status: 0 when the import could run as planned, 1 when it would refuse or something
/// cannot be replayed, 2 when the plan could not be made.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport plan poc.zip --map mapping.toml\n  dbxport plan poc.zip --map mapping.toml --json | jq '.items[] | select(.action == \"refuse\")'"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: IdentityArgs,
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
    /// List every object that would be created, not only updates, skips and refusals.
    #[arg(long)]
    pub all: bool,
}

/// Runs `plan`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    super::alloc::map_large_buffers();
    let opener = args.keys.opener()?;
    let options = args.common.options(Some(&args.behaviour))?;
    let client = args.common.client()?;
    let source = match args.common.open("plan", opener.as_ref()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let values = match opener.as_ref() {
        Some(o) => match source.unseal_all(Some(o), &|s| source.needs_value(s, &options.filter)) {
            Ok(v) => Some(v),
            Err(e) => return Ok(report_error("plan", &e)),
        },
        None => None,
    };
    let journal = ledger::journal_path(source.path(), client.host());
    let knowledge = Knowledge::load(&journal, &ledger::header(&source.bundle_id, client.host()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("plan: cannot start the async runtime")?;
    let result = runtime.block_on(plan(PlanInput {
        source: &source,
        options: &options,
        client: &client,
        knowledge: &knowledge,
        secrets: values.as_ref(),
        mode: Mode::Import,
    }));
    let p = match result {
        Ok(p) => p,
        Err(e) => return Ok(report_error("plan", &e)),
    };
    if args.common.json {
        print_json(&p)?;
    } else {
        print!("{}", render_plan(&p, args.all));
        if knowledge.interrupted() {
            println!(
                "note: an interrupted import left a journal ({}); `dbxport import --resume` finishes it",
                journal.display()
            );
        }
    }
    let cannot = p.items.iter().any(|i| i.action == Action::Cannot);
    if p.is_refused() {
        eprintln!("{}", Hint::PlanRefused);
    } else if cannot {
        eprintln!("{}", Hint::PlanCannot);
    }
    Ok(if p.is_refused() || cannot {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    })
}
