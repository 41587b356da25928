//! Compute records, read for reference only: clusters (`/api/2.1/clusters/*`, paged), instance
//! pools, cluster policies, SQL warehouses.

use super::transport::Call;
use super::{check_page, Client, ClientError};
use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Warehouse};
use serde::Deserialize;
use std::collections::HashSet;

/// Compute API calls.
#[derive(Debug, Clone, Copy)]
pub struct ComputeApi<'a> {
    c: &'a Client,
}

#[derive(Deserialize)]
struct ClustersResponse {
    #[serde(default)]
    clusters: Vec<Cluster>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct PoolsResponse {
    #[serde(default)]
    instance_pools: Vec<InstancePool>,
}

#[derive(Deserialize)]
struct PoliciesResponse {
    #[serde(default)]
    policies: Vec<ClusterPolicy>,
}

impl<'a> ComputeApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        ComputeApi { c }
    }

    /// Every cluster (all pages).
    pub async fn list_clusters(&self) -> Result<Vec<Cluster>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call = Call::get("/api/2.1/clusters/list")
                .query("page_size", 100)
                .query_opt("page_token", token.as_deref());
            let describe = call.describe();
            let r: ClustersResponse = self.c.transport().json(call).await?;
            out.extend(r.clusters);
            pages += 1;
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => {
                    check_page(&describe, pages, &mut seen, &t)?;
                    token = Some(t);
                }
                None => return Ok(out),
            }
        }
    }

    /// One cluster.
    pub async fn get_cluster(&self, cluster_id: &str) -> Result<Cluster, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.1/clusters/get")
                    .query("cluster_id", cluster_id)
                    .object(format!("cluster_id={cluster_id}")),
            )
            .await
    }

    /// Every instance pool.
    pub async fn list_instance_pools(&self) -> Result<Vec<InstancePool>, ClientError> {
        let r: PoolsResponse = self
            .c
            .transport()
            .json(Call::get("/api/2.0/instance-pools/list"))
            .await?;
        Ok(r.instance_pools)
    }

    /// Every cluster policy.
    pub async fn list_policies(&self) -> Result<Vec<ClusterPolicy>, ClientError> {
        let r: PoliciesResponse = self
            .c
            .transport()
            .json(Call::get("/api/2.0/policies/clusters/list"))
            .await?;
        Ok(r.policies)
    }

    /// Every SQL warehouse (same as [`super::sql::SqlApi::list_warehouses`]).
    pub async fn list_warehouses(&self) -> Result<Vec<Warehouse>, ClientError> {
        self.c.sql().list_warehouses().await
    }
}
