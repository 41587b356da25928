//! Reference-only records, never replayed: clusters (with their init scripts), instance pools,
//! cluster policies, SQL warehouses, DBFS mounts, and the principals referenced anywhere in
//! the export. Each also lands on the report's "must recreate" checklist. The compute listings
//! run first, because the code scanner looks for their ids in notebooks.

use crate::bundle::Resource;
use crate::export::context::{commit, reason, Ctx};
use crate::export::report::{Outcome, RecreateItem, RecreateKind};
use crate::export::stage::DoneEntry;
use crate::model::command::{is_builtin_mount, MountsOutput, MOUNTS_SNIPPET};
use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use crate::model::Kind;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// What the compute listings found.
#[derive(Debug, Default)]
pub struct Compute {
    /// Clusters.
    pub clusters: Vec<Cluster>,
    /// Instance pools.
    pub pools: Vec<InstancePool>,
    /// Cluster policies.
    pub policies: Vec<ClusterPolicy>,
    /// SQL warehouses.
    pub warehouses: Vec<Warehouse>,
}

/// Lists clusters, pools, policies and warehouses (each listing failure is reported under its
/// kind, and the others go on).
pub async fn list_compute(ctx: &Arc<Ctx>) -> Compute {
    let c = ctx.client.compute();
    let (clusters, pools, policies, warehouses) = tokio::join!(
        c.list_clusters(),
        c.list_instance_pools(),
        c.list_policies(),
        c.list_warehouses()
    );
    let mut out = Compute::default();
    let fail = |kind: Kind, what: &str, e: crate::client::ClientError| {
        if ctx.opts.wants(kind) || e.is_auth_failure() {
            ctx.found(kind, 1);
            ctx.client_failure(
                kind,
                &format!("(every {what})"),
                "",
                &format!("listing {what}s"),
                e,
            );
        }
    };
    match clusters {
        Ok(v) => out.clusters = v,
        Err(e) => fail(Kind::Cluster, "cluster", e),
    }
    match pools {
        Ok(v) => out.pools = v,
        Err(e) => fail(Kind::InstancePool, "instance pool", e),
    }
    match policies {
        Ok(v) => out.policies = v,
        Err(e) => fail(Kind::ClusterPolicy, "cluster policy", e),
    }
    match warehouses {
        Ok(v) => out.warehouses = v,
        Err(e) => fail(Kind::Warehouse, "SQL warehouse", e),
    }
    out
}

fn init_scripts(spec: &serde_json::Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(scripts)) = spec.get("init_scripts") else {
        return Vec::new();
    };
    scripts
        .iter()
        .filter_map(|s| {
            let (kind, dest) = s.as_object()?.iter().next()?;
            let d = dest.get("destination")?.as_str()?;
            Some(format!("init script ({kind}) {d}"))
        })
        .collect()
}

fn cluster_details(c: &Cluster) -> Vec<String> {
    let mut d = init_scripts(&c.spec);
    for (field, label) in [
        ("spark_version", "runtime"),
        ("node_type_id", "node type"),
        ("instance_pool_id", "instance pool"),
        ("policy_id", "policy"),
        ("data_security_mode", "access mode"),
        ("single_user_name", "single user"),
    ] {
        if let Some(v) = c.spec.get(field).and_then(Value::as_str) {
            d.push(format!("{label} {v}"));
        }
    }
    if let Some(Value::Array(libs)) = c.spec.get("libraries") {
        for l in libs {
            d.push(format!("library {l}"));
        }
    }
    d
}

/// Stages the compute records and puts them on the checklist.
pub async fn export_compute(ctx: Arc<Ctx>, compute: Compute) {
    let mut jobs: Vec<(Kind, String, String, Resource, Vec<String>)> = Vec::new();
    for c in &compute.clusters {
        let details = cluster_details(c);
        ctx.with_report(|r| {
            r.must_recreate.items.push(RecreateItem {
                kind: RecreateKind::Cluster,
                id: c.cluster_id.clone(),
                name: c.cluster_name.clone(),
                details: details.clone(),
                mapped_to: None,
                used_by: Vec::new(),
            })
        });
        let mut principals = Vec::new();
        for f in ["creator_user_name", "single_user_name"] {
            if let Some(n) = c.spec.get(f).and_then(Value::as_str) {
                principals.push(format!("any:{n}"));
            }
        }
        jobs.push((
            Kind::Cluster,
            c.cluster_id.clone(),
            c.cluster_name.clone(),
            Resource::cluster(c),
            principals,
        ));
    }
    for p in &compute.pools {
        ctx.with_report(|r| {
            r.must_recreate.items.push(RecreateItem {
                kind: RecreateKind::InstancePool,
                id: p.instance_pool_id.clone(),
                name: p.instance_pool_name.clone(),
                details: p
                    .spec
                    .get("node_type_id")
                    .and_then(Value::as_str)
                    .map(|n| vec![format!("node type {n}")])
                    .unwrap_or_default(),
                mapped_to: None,
                used_by: Vec::new(),
            })
        });
        jobs.push((
            Kind::InstancePool,
            p.instance_pool_id.clone(),
            p.instance_pool_name.clone(),
            Resource::instance_pool(p),
            Vec::new(),
        ));
    }
    for p in &compute.policies {
        ctx.with_report(|r| {
            r.must_recreate.items.push(RecreateItem {
                kind: RecreateKind::ClusterPolicy,
                id: p.policy_id.clone(),
                name: p.name.clone(),
                details: Vec::new(),
                mapped_to: None,
                used_by: Vec::new(),
            })
        });
        jobs.push((
            Kind::ClusterPolicy,
            p.policy_id.clone(),
            p.name.clone(),
            Resource::cluster_policy(p),
            Vec::new(),
        ));
    }
    for w in &compute.warehouses {
        ctx.with_report(|r| {
            r.must_recreate.items.push(RecreateItem {
                kind: RecreateKind::Warehouse,
                id: w.id.clone(),
                name: w.name.clone(),
                details: w
                    .spec
                    .get("cluster_size")
                    .and_then(Value::as_str)
                    .map(|s| vec![format!("size {s}")])
                    .unwrap_or_default(),
                mapped_to: None,
                used_by: Vec::new(),
            })
        });
        let mut principals = Vec::new();
        if let Some(n) = w.spec.get("creator_name").and_then(Value::as_str) {
            principals.push(format!("any:{n}"));
        }
        jobs.push((
            Kind::Warehouse,
            w.id.clone(),
            w.name.clone(),
            Resource::warehouse(w),
            principals,
        ));
    }
    for (kind, id, name, resource, principals) in jobs {
        if !ctx.opts.wants(kind) {
            continue;
        }
        ctx.found(kind, 1);
        if ctx.reuse(kind, &id) {
            continue;
        }
        let entry = DoneEntry {
            name,
            principals,
            ..DoneEntry::default()
        };
        commit(&ctx, kind, id, entry, resource).await;
    }
}

/// Lists DBFS mounts: their points from `/mnt`, and with a cluster, every mount and its source
/// through command execution of [`MOUNTS_SNIPPET`].
pub async fn export_mounts(ctx: Arc<Ctx>) {
    if !ctx.opts.wants(Kind::Mount) {
        return;
    }
    ctx.phase("DBFS mounts");
    let mut mounts: BTreeMap<String, (Mount, Vec<String>)> = BTreeMap::new();
    let cluster = ctx
        .opts
        .cluster_id
        .clone()
        .or_else(|| ctx.opts.secrets.cluster_id.clone());
    let mut from_cluster = false;
    if let Some(cluster) = &cluster {
        match crate::export::cluster::run_read_only(
            &ctx,
            cluster,
            MOUNTS_SNIPPET,
            Duration::from_secs(600),
        )
        .await
        {
            Ok(out) => {
                let parsed = out
                    .data
                    .as_str()
                    .and_then(|t| serde_json::from_str::<MountsOutput>(t.trim()).ok());
                match parsed {
                    Some(m) => {
                        from_cluster = true;
                        for mount in m.mounts {
                            if !is_builtin_mount(&mount.mount_point) {
                                mounts.insert(mount.mount_point.clone(), (mount, Vec::new()));
                            }
                        }
                    }
                    None => ctx.notice(format!(
                        "DBFS mounts: the mounts program on cluster {cluster} printed something else; mount sources are not known"
                    )),
                }
            }
            Err(e) => ctx.notice(format!(
                "DBFS mounts: cannot read mount sources on cluster {cluster}: {}",
                reason(&e)
            )),
        }
    }
    if !from_cluster {
        match ctx.client.dbfs().list("/mnt").await {
            Ok(entries) => {
                let why = if cluster.is_some() {
                    "source not known: the cluster could not be asked"
                } else {
                    "source not known: pass --cluster ID (a running cluster) to read mount sources"
                };
                for e in entries.into_iter().filter(|e| e.is_dir) {
                    let point = e.path.trim_end_matches('/').to_string();
                    mounts.insert(
                        point.clone(),
                        (
                            Mount {
                                mount_point: point,
                                source: String::new(),
                                encryption_type: None,
                            },
                            vec![why.to_string()],
                        ),
                    );
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                ctx.found(Kind::Mount, 1);
                ctx.client_failure(Kind::Mount, "/mnt", "/mnt", "listing /mnt", e);
            }
        }
    }
    for (point, (m, notes)) in mounts {
        let mut details = Vec::new();
        if !m.source.is_empty() {
            details.push(format!("source {}", m.source));
        }
        if let Some(enc) = &m.encryption_type {
            if !enc.is_empty() {
                details.push(format!("encryption {enc}"));
            }
        }
        ctx.with_report(|r| {
            r.must_recreate.items.push(RecreateItem {
                kind: RecreateKind::Mount,
                id: point.clone(),
                name: point.clone(),
                details,
                mapped_to: None,
                used_by: Vec::new(),
            })
        });
        ctx.found(Kind::Mount, 1);
        if ctx.reuse(Kind::Mount, &point) {
            continue;
        }
        let resource = Resource::mount(&m).with_notes(notes.clone());
        let entry = DoneEntry {
            name: point.clone(),
            outcome: Some(if notes.is_empty() {
                Outcome::Exported
            } else {
                Outcome::Degraded
            }),
            notes,
            ..DoneEntry::default()
        };
        commit(&ctx, Kind::Mount, point, entry, resource).await;
    }
}

/// Stages every principal referenced by what was exported: users, groups and service
/// principals named in ACLs, grants, owners, run-as identities and home folders.
pub async fn export_principals(ctx: Arc<Ctx>) {
    if !ctx.opts.wants(Kind::Principal) {
        return;
    }
    ctx.phase("principals");
    let refs = ctx.referenced_principals();
    let mut wanted_users = BTreeSet::new();
    let mut wanted_groups = BTreeSet::new();
    let mut wanted_sps = BTreeSet::new();
    let mut any = BTreeSet::new();
    for r in &refs {
        let (prefix, name) = r.split_once(':').unwrap_or(("any", r));
        match prefix {
            "user" => wanted_users.insert(name.to_lowercase()),
            "group" => wanted_groups.insert(name.to_string()),
            "sp" => wanted_sps.insert(name.to_string()),
            _ => any.insert(name.to_string()),
        };
    }
    if refs.is_empty() {
        return;
    }
    let scim = ctx.client.scim();
    let (users, groups, sps) = tokio::join!(
        scim.list_users(None),
        scim.list_groups(None),
        scim.list_service_principals(None)
    );
    let mut matched: BTreeSet<String> = BTreeSet::new();
    let mut staged: Vec<(String, String, Resource)> = Vec::new();
    match users {
        Ok(users) => {
            for u in users {
                let lower = u.user_name.to_lowercase();
                let hit = wanted_users.contains(&lower)
                    || any.iter().any(|a| a.eq_ignore_ascii_case(&u.user_name));
                if hit {
                    matched.insert(lower);
                    staged.push((u.id.clone(), u.user_name.clone(), Resource::user(&u)));
                }
            }
        }
        Err(e) => {
            ctx.found(Kind::Principal, 1);
            ctx.client_failure(Kind::Principal, "(every user)", "", "listing users", e);
        }
    }
    match groups {
        Ok(groups) => {
            for g in groups {
                if wanted_groups.contains(&g.display_name) || any.contains(&g.display_name) {
                    matched.insert(g.display_name.to_lowercase());
                    staged.push((g.id.clone(), g.display_name.clone(), Resource::group(&g)));
                }
            }
        }
        Err(e) => {
            ctx.found(Kind::Principal, 1);
            ctx.client_failure(Kind::Principal, "(every group)", "", "listing groups", e);
        }
    }
    match sps {
        Ok(sps) => {
            for sp in sps {
                let hit =
                    wanted_sps.contains(&sp.application_id) || any.contains(&sp.application_id);
                if hit {
                    matched.insert(sp.application_id.to_lowercase());
                    staged.push((
                        sp.id.clone(),
                        sp.application_id.clone(),
                        Resource::service_principal(&sp),
                    ));
                }
            }
        }
        Err(e) => {
            ctx.found(Kind::Principal, 1);
            ctx.client_failure(
                Kind::Principal,
                "(every service principal)",
                "",
                "listing service principals",
                e,
            );
        }
    }
    let unknown: Vec<String> = refs
        .iter()
        .map(|r| r.split_once(':').map_or(r.as_str(), |(_, n)| n).to_string())
        .filter(|n| !matched.contains(&n.to_lowercase()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unknown.is_empty() {
        ctx.notice(format!(
            "{} principal(s) referenced by exported objects are not known to the workspace (deleted, or outside it): {}",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    staged.sort_by(|a, b| a.0.cmp(&b.0));
    staged.dedup_by(|a, b| a.0 == b.0);
    for (id, name, resource) in staged {
        ctx.found(Kind::Principal, 1);
        if ctx.reuse(Kind::Principal, &id) {
            continue;
        }
        let entry = DoneEntry {
            name,
            ..DoneEntry::default()
        };
        commit(&ctx, Kind::Principal, id, entry, resource).await;
    }
}
