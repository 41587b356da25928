//! `dbxport demo`: the whole journey, offline, against two emulators started in this process —
//! a proof-of-concept workspace and an empty production one — with a fresh age key: export,
//! verify, plan, import with a small mapping, diff, unpack. Everything it writes goes to one
//! folder (./dbxport-demo by default), which a later run replaces.

use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use dbxport::bundle::printable::{printable, printable_lines};
use dbxport::bundle::{Opener, Sealer};
use dbxport::client::config::SecretString;
use dbxport::client::{Client, ClientOptions, Config};
use dbxport::emulator::{Emulator, EmulatorConfig};
use dbxport::export::{ExportOptions, Quiet, SecretsOptions, Selection, DEFAULT_KINDS};
use dbxport::hints::Hint;
use dbxport::import::ledger::Knowledge;
use dbxport::import::plan::{plan, Mode, PlanInput};
use dbxport::import::{ApplyOptions, Interrupt, Mapping, Options, SourceBundle};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file that marks a folder as the demo's own, so a later run may replace it.
const MARKER: &str = ".dbxport-demo";

/// The mapping the demo imports with: the PoC's clusters, pool and warehouse in prod.
const DEMO_MAPPING: &str = r#"# The demo's mapping: how the PoC's compute becomes production's.
# (Users, groups and service principals exist in both workspaces under the same names.)
unmapped_principals = "fail"

[clusters]
# The shared research cluster becomes production's shared cluster...
"0611-083245-krill42a" = "1201-090000-prodshr1"
# ...and the GPU cluster becomes a job cluster created with each run.
"0702-154510-glacier7" = { new_cluster = { spark_version = "15.4.x-gpu-ml-scala2.12", node_type_id = "Standard_NC6s_v3", num_workers = 1 } }

[instance_pools]
"0611-090012-ponds3-pool-k3j9x2m1" = "1201-090000-prodpool"

[warehouses]
"4b9e1f2c7a3d5e60" = "7f00aa11bb22cc33"
"#;

/// Production's SQL warehouse (the one the mapping points at).
const PROD_WAREHOUSE: &str = "7f00aa11bb22cc33";

/// Run the whole journey offline: export a PoC, verify, plan, import into prod, diff, unpack.
///
/// Starts two Databricks-compatible emulators in this process — a proof-of-concept workspace
/// seeded from fixtures/workspaces/poc and an empty production workspace (the same users, the
/// PoC's tables already moved by a data migration, one SQL warehouse) — makes a fresh age key,
/// and walks through every step, saying what happened and where to look. Nothing leaves this
/// machine. Everything is written to DIR (default ./dbxport-demo); running the demo again
/// replaces its own earlier output, and it refuses to touch a folder it did not make.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:\n  dbxport demo\n  dbxport demo --dir /tmp/try-dbxport")]
pub struct Args {
    /// Where to write everything.
    #[arg(long, value_name = "DIR", default_value = "dbxport-demo")]
    pub dir: PathBuf,
    /// The folder holding the seed workspaces `poc/` and `empty/` (default: fixtures/workspaces
    /// of the dbxport source tree).
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
}

fn fixtures(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match arg {
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            PathBuf::from("fixtures/workspaces"),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspaces"),
        ],
    };
    for c in &candidates {
        if c.join("poc/workspace.json").is_file() && c.join("empty").is_dir() {
            return Ok(c.clone());
        }
    }
    bail!(
        "the demo's seed workspaces (poc/ and empty/) are not in {}\n{}",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(" or "),
        Hint::DemoFixtures
    )
}

/// Makes `dir` empty and the demo's own; refuses a folder that holds anything else.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_empty = std::fs::read_dir(dir)
            .with_context(|| format!("{}", dir.display()))?
            .next()
            .is_none();
        if !is_empty {
            if !dir.join(MARKER).is_file() {
                bail!(
                    "{}: exists and was not made by the demo; not touching it\n{}",
                    dir.display(),
                    Hint::DemoFolderTaken
                );
            }
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("removing the earlier demo output {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "This folder was written by `dbxport demo`; the next run replaces it.\n",
    )?;
    Ok(())
}

/// Production's seed: the empty fixture, the PoC's databases, tables and Unity Catalog
/// securables without grants (owned by admins), and one running SQL warehouse.
fn write_prod_seed(fixtures: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for e in std::fs::read_dir(fixtures.join("empty"))? {
        let e = e?;
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name()))?;
        }
    }
    let read = |name: &str| -> anyhow::Result<Value> {
        let p = fixtures.join("poc").join(name);
        serde_json::from_slice(&std::fs::read(&p).with_context(|| p.display().to_string())?)
            .with_context(|| p.display().to_string())
    };
    let mut hive = read("hive.json")?;
    hive["grants"] = json!([]);
    hive["catalog_owner"] = json!("admins");
    if let Some(dbs) = hive["databases"].as_array_mut() {
        for db in dbs {
            db["owner"] = json!("admins");
            for list in ["tables", "functions"] {
                if let Some(items) = db[list].as_array_mut() {
                    for t in items {
                        t["owner"] = json!("admins");
                    }
                }
            }
        }
    }
    std::fs::write(dir.join("hive.json"), serde_json::to_vec_pretty(&hive)?)?;
    let uc = read("unity_catalog.json")?;
    let mut securables: Vec<Value> = uc["securables"].as_array().cloned().unwrap_or_default();
    // Registered models (securable type `function`) arrive with the import.
    for g in uc["grants"].as_array().into_iter().flatten() {
        if g["securable_type"] != "function" {
            securables
                .push(json!({"securable_type": g["securable_type"], "full_name": g["full_name"]}));
        }
    }
    std::fs::write(
        dir.join("unity_catalog.json"),
        serde_json::to_vec_pretty(&json!({"securables": securables, "grants": []}))?,
    )?;
    std::fs::write(
        dir.join("compute.json"),
        serde_json::to_vec_pretty(&json!({"warehouses": [{
            "id": PROD_WAREHOUSE, "name": "prod-sql", "cluster_size": "Small",
            "state": "RUNNING", "warehouse_type": "PRO"
        }]}))?,
    )?;
    Ok(())
}

/// The PoC's running cluster (secret values are read through it) and its SQL warehouse.
fn poc_compute(fixtures: &Path) -> anyhow::Result<(String, String)> {
    let v: Value = serde_json::from_slice(&std::fs::read(fixtures.join("poc/compute.json"))?)?;
    let cluster = v["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["state"] == "RUNNING")
        .and_then(|c| c["cluster_id"].as_str())
        .context("the PoC seed has no running cluster")?;
    let warehouse = v["warehouses"][0]["id"]
        .as_str()
        .context("the PoC seed has no SQL warehouse")?;
    Ok((cluster.to_string(), warehouse.to_string()))
}

/// The `name (N versions, aliases a→1 …)` of every Unity Catalog model of a workspace, read
/// through the Unity Catalog registry as any client would.
async fn uc_models(c: &Client) -> anyhow::Result<Vec<String>> {
    let reg = dbxport::models::Registry::uc(c.clone());
    let mut out = Vec::new();
    for m in reg.list_models().await? {
        let versions = reg.list_versions(&m.name).await?;
        let aliases: Vec<String> = m
            .aliases
            .iter()
            .map(|a| format!("@{}→{}", a.alias, a.version))
            .collect();
        out.push(format!(
            "{} ({} version{}{}{})",
            m.name,
            versions.len(),
            if versions.len() == 1 { "" } else { "s" },
            if aliases.is_empty() { "" } else { ", " },
            aliases.join(" ")
        ));
    }
    if out.is_empty() {
        out.push("none".into());
    }
    Ok(out)
}

fn client(url: &str, token: &str) -> anyhow::Result<Client> {
    let config = Config::pat(url, SecretString::from(token.to_string()))?;
    Ok(Client::new(&config, ClientOptions::from_config(&config))?)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn step(n: u32, title: &str) {
    println!("\n[{n}/8] {title}");
}

/// Runs `demo`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let fx = fixtures(args.fixtures.as_deref())?;
    prepare(&args.dir)?;
    let dir = args.dir.canonicalize()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("demo: cannot start the async runtime")?;
    let r = runtime.block_on(journey(&fx, &dir));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match r {
        Ok(true) => Ok(EXIT_OK),
        Ok(false) => Ok(EXIT_PROBLEMS),
        Err(e) => {
            eprintln!("dbxport: demo: {}", printable_lines(&format!("{e:#}")));
            Ok(EXIT_ERROR)
        }
    }
}

async fn journey(fx: &Path, dir: &Path) -> anyhow::Result<bool> {
    println!(
        "dbxport demo: the whole journey, offline, in {}",
        dir.display()
    );

    step(1, "start two workspaces on this machine");
    let poc = Emulator::start(EmulatorConfig::default().with_seed(fx.join("poc")))
        .await
        .context("starting the PoC emulator")?;
    let prod_seed = dir.join("prod-seed");
    write_prod_seed(fx, &prod_seed)?;
    let prod = Emulator::start(EmulatorConfig::default().with_seed(&prod_seed))
        .await
        .context("starting the production emulator")?;
    println!(
        "  PoC        {}  (seeded from {})",
        poc.url(),
        fx.join("poc").display()
    );
    println!(
        "  production {}  (empty: the same users and groups, the PoC's tables already moved, one SQL warehouse)",
        prod.url()
    );
    let poc_client = client(poc.url(), poc.admin_token())?;
    let prod_client = client(prod.url(), prod.admin_token())?;

    step(2, "make a fresh age key for the secret values");
    let created = dbxport::bundle::inventory::format_created(time::OffsetDateTime::now_utc());
    let (identity, recipient) = dbxport::bundle::seal::generate_identity(&created);
    let key = dir.join("key.txt");
    write_private(&key, &identity)?;
    drop(identity);
    println!(
        "  identity  {} (mode 0600; keep it apart from the bundle)",
        key.display()
    );
    println!("  recipient {recipient}");

    step(3, "export the PoC into one bundle");
    let (cluster, warehouse) = poc_compute(fx)?;
    let bundle = dir.join("poc.zip");
    let summary = dbxport::export::export(
        poc_client,
        ExportOptions {
            output: bundle.clone(),
            kinds: DEFAULT_KINDS.into_iter().collect(),
            selection: Selection::default(),
            notebook_format: None,
            secrets: SecretsOptions {
                sealer: Some(Sealer::to_recipients(&[recipient.as_str()])?),
                cluster_id: Some(cluster.clone()),
            },
            warehouse_id: Some(warehouse),
            cluster_id: Some(cluster),
            envelope: None,
            resume: false,
            concurrency: 8,
            models: Default::default(),
        },
        Arc::new(Quiet),
    )
    .await
    .context("exporting the PoC")?;
    let t = summary.report.totals();
    println!(
        "  {}: {} objects exported ({} degraded, {} not exported: see export-report.md inside)",
        bundle.display(),
        t.exported,
        t.degraded,
        t.not_exported
    );
    println!("  secret values are sealed with age to the recipient above; the rest is plain files");

    step(
        4,
        "verify the bundle — every byte, and every sealed value with the key",
    );
    let mut opener = Opener::new();
    opener.add_identity_file(&key)?;
    let v = dbxport::bundle::verify_file(&bundle, Some(&opener))?;
    println!(
        "  {} payload files and {} sealed values checked: {}",
        v.payload_files,
        v.sealed_opened,
        if v.ok { "ok" } else { "PROBLEMS" }
    );
    for p in &v.problems {
        println!("  {}", printable(&p.to_string()));
    }
    if !v.ok {
        return Ok(false);
    }
    println!("  independent checks work too: unzip -t, sha256sum -c, bagit.py --validate, age -d");

    step(5, "plan the import into production (reads only)");
    let map = dir.join("mapping.toml");
    std::fs::write(&map, DEMO_MAPPING)?;
    let options = Options {
        mapping: Mapping::parse(DEMO_MAPPING, &map.display().to_string())?,
        concurrency: 8,
        ..Options::default()
    };
    let source = SourceBundle::open(&bundle, None)?;
    let before = prod.stats().mutating;
    let p = plan(PlanInput {
        source: &source,
        options: &options,
        client: &prod_client,
        knowledge: &Knowledge::default(),
        secrets: None,
        mode: Mode::Import,
    })
    .await?;
    let (mut create, mut skip, mut refuse) = (0, 0, 0);
    for c in p.counts().values() {
        create += c[0];
        skip += c[3] + c[5];
        refuse += c[4];
    }
    println!(
        "  with {}: {create} objects to create, {skip} skipped or not replayable, {refuse} refused; {} writes sent",
        map.display(),
        prod.stats().mutating - before
    );
    println!("  without the mapping, the plan would refuse: the PoC's jobs run on clusters production lacks");

    step(6, "import into production");
    let report = dbxport::import::import(
        &source,
        &prod_client,
        &options,
        Some(&opener),
        &ApplyOptions::default(),
        &Interrupt::new(),
        &|_| {},
    )
    .await?;
    let rendered = report.render();
    std::fs::write(dir.join("import-report.txt"), &rendered)?;
    let t = report.totals();
    println!(
        "  {} created, {} updated, {} unchanged, {} skipped, {} failed ({} requests)",
        t.created, t.updated, t.unchanged, t.skipped, t.failed, report.requests
    );
    println!(
        "  jobs arrive paused and tagged with their source; the Key Vault scope, clusters, pools and mounts are on the must-recreate list ({} items, {} lines of code)",
        report.must_recreate.items.len(),
        report.must_recreate.code.len()
    );
    let uc = uc_models(&prod_client).await?;
    println!(
        "  Unity Catalog models in production: {} — with their versions' files, comments, tags, aliases, owners and grants",
        uc.join(", ")
    );
    println!(
        "  the journal {} lets an interrupted import finish with --resume",
        report.journal
    );
    if report.has_problems() {
        println!("{rendered}");
        return Ok(false);
    }
    let again = dbxport::import::import(
        &source,
        &prod_client,
        &options,
        Some(&opener),
        &ApplyOptions::default(),
        &Interrupt::new(),
        &|_| {},
    )
    .await?;
    println!(
        "  importing again: {} unchanged, {} writes — nothing is duplicated",
        again.totals().unchanged,
        again.mutating_requests
    );

    step(7, "diff production against the bundle");
    let d = dbxport::import::diff(&source, &prod_client, &options, Some(&opener)).await?;
    let equal: u64 = d.equal.values().sum();
    println!(
        "  {equal} objects compared (secret values included): {}",
        if d.is_clean() {
            "no differences".to_string()
        } else {
            format!("{} differences", d.differences.len())
        }
    );
    if !d.is_clean() {
        println!("{}", d.render());
        return Ok(false);
    }

    step(8, "unpack the bundle into a folder anyone can browse");
    let out = dir.join("unpacked");
    let u = dbxport::bundle::unpack(&bundle, &out, None, false)
        .map_err(|p| anyhow::anyhow!("unpacking: {p}"))?;
    println!(
        "  {} files in {} (secret values stay sealed; `dbxport unpack --identity {}` opens them into a 0600 folder)",
        u.files,
        u.bag_dir.display(),
        key.display()
    );
    prod.dump_to(&dir.join("prod-dump"))
        .context("dumping production")?;

    println!("\nwhere to look:");
    println!("  {}  the bundle", bundle.display());
    println!(
        "  {}  its browsable tree (INVENTORY.md first)",
        u.bag_dir.display()
    );
    println!("  {}  the mapping used", map.display());
    println!(
        "  {}  the full import report",
        dir.join("import-report.txt").display()
    );
    println!(
        "  {}  production after the import, as files",
        dir.join("prod-dump").display()
    );
    println!("\nnext: try `dbxport plan`, `import` and `diff` against your own workspaces (see README, \"Mapping file\").");
    poc.shutdown();
    prod.shutdown();
    Ok(true)
}
