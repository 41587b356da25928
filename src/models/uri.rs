//! Artifact URIs as model versions and runs give them, parsed into the places dbxport knows
//! how to read: the MLflow server's artifact proxy, a run's or a logged model's artifacts,
//! another registered version, or DBFS. Pure; no I/O.

/// Where a version's artifacts live, as far as the URI alone tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactUri {
    /// Served by an MLflow tracking server's artifact proxy (`mlflow-artifacts:/…`, or an
    /// `http(s)://…/api/2.0/mlflow-artifacts/artifacts/…` URL): the path below the server's
    /// artifacts destination, without leading or trailing `/`.
    Proxy(String),
    /// A run's artifacts (`runs:/<run_id>/<path>`).
    Run {
        /// The run.
        run_id: String,
        /// Path below the run's artifact root (may be empty).
        path: String,
    },
    /// An MLflow 3 logged model (`models:/m-<id>/<path>`).
    LoggedModel {
        /// The logged model id (`m-…`).
        model_id: String,
        /// Path below the model's artifacts (may be empty).
        path: String,
    },
    /// Another registered model version (`models:/<name>/<version>`).
    Registered {
        /// Model name.
        name: String,
        /// Version number, stage or `@alias` as written.
        version: String,
    },
    /// A DBFS path (`dbfs:/…`), absolute, without the scheme.
    Dbfs(String),
    /// Anything else (`s3://`, `file:`, …): not reachable through a registry API.
    Other(String),
}

fn trim(p: &str) -> String {
    p.trim_matches('/').to_string()
}

/// Parses an artifact URI.
pub fn parse(uri: &str) -> ArtifactUri {
    let u = uri.trim();
    if let Some(rest) = u.strip_prefix("mlflow-artifacts:") {
        // `mlflow-artifacts://host:port/path` names a server; the path is what the proxy serves.
        let path = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        return ArtifactUri::Proxy(trim(path));
    }
    if u.starts_with("http://") || u.starts_with("https://") {
        const MARK: &str = "/api/2.0/mlflow-artifacts/artifacts";
        if let Some(i) = u.find(MARK) {
            let rest = &u[i + MARK.len()..];
            let rest = rest.split(['?', '#']).next().unwrap_or("");
            return ArtifactUri::Proxy(trim(rest));
        }
        return ArtifactUri::Other(u.to_string());
    }
    if let Some(rest) = u.strip_prefix("runs:") {
        let rest = rest.trim_start_matches('/');
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !run_id.is_empty() {
            return ArtifactUri::Run {
                run_id: run_id.to_string(),
                path: trim(path),
            };
        }
        return ArtifactUri::Other(u.to_string());
    }
    if let Some(rest) = u.strip_prefix("models:") {
        let rest = rest.trim_start_matches('/');
        let (first, path) = rest.split_once('/').unwrap_or((rest, ""));
        if first.starts_with("m-") {
            return ArtifactUri::LoggedModel {
                model_id: first.to_string(),
                path: trim(path),
            };
        }
        if !first.is_empty() && !path.is_empty() {
            return ArtifactUri::Registered {
                name: first.to_string(),
                version: trim(path),
            };
        }
        return ArtifactUri::Other(u.to_string());
    }
    if let Some(rest) = u.strip_prefix("dbfs:") {
        let p = format!("/{}", rest.trim_matches('/'));
        return ArtifactUri::Dbfs(p);
    }
    ArtifactUri::Other(u.to_string())
}

/// Joins a base and a relative artifact path with one `/`; either may be empty.
pub fn join(base: &str, rel: &str) -> String {
    let (b, r) = (base.trim_end_matches('/'), rel.trim_matches('/'));
    match (b.is_empty(), r.is_empty()) {
        (_, true) => b.to_string(),
        (true, false) => r.to_string(),
        (false, false) => format!("{b}/{r}"),
    }
}

/// True when `rel` is a relative artifact path that stays below its root: no empty, `.` or
/// `..` component, no backslash, no control character. A listing that names anything else is
/// refused rather than followed.
pub fn is_safe_relative(rel: &str) -> bool {
    // The bundle's rule for artifact paths (§6.5), so what export accepts, verify accepts.
    crate::bundle::records::is_artifact_path(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_uri_forms_mlflow_writes() {
        assert_eq!(
            parse("mlflow-artifacts:/1/abc/artifacts/"),
            ArtifactUri::Proxy("1/abc/artifacts".into())
        );
        assert_eq!(
            parse("mlflow-artifacts://127.0.0.1:5000/2/x/artifacts/model"),
            ArtifactUri::Proxy("2/x/artifacts/model".into())
        );
        assert_eq!(
            parse("http://h:5000/api/2.0/mlflow-artifacts/artifacts/3/r/artifacts"),
            ArtifactUri::Proxy("3/r/artifacts".into())
        );
        assert_eq!(
            parse("runs:/0123abc/model"),
            ArtifactUri::Run {
                run_id: "0123abc".into(),
                path: "model".into()
            }
        );
        assert_eq!(
            parse("runs:/0123abc"),
            ArtifactUri::Run {
                run_id: "0123abc".into(),
                path: String::new()
            }
        );
        assert_eq!(
            parse("models:/m-d609f8/artifacts"),
            ArtifactUri::LoggedModel {
                model_id: "m-d609f8".into(),
                path: "artifacts".into()
            }
        );
        assert_eq!(
            parse("models:/churn/3"),
            ArtifactUri::Registered {
                name: "churn".into(),
                version: "3".into()
            }
        );
        assert_eq!(
            parse("dbfs:/databricks/mlflow-registry/1/models/a/1/"),
            ArtifactUri::Dbfs("/databricks/mlflow-registry/1/models/a/1".into())
        );
        assert!(matches!(parse("s3://bucket/x"), ArtifactUri::Other(_)));
        assert!(matches!(parse("file:///tmp/x"), ArtifactUri::Other(_)));
        assert!(matches!(parse("runs:/"), ArtifactUri::Other(_)));
    }

    #[test]
    fn joins_and_checks_relative_paths() {
        assert_eq!(join("a/b/", "/c"), "a/b/c");
        assert_eq!(join("", "c"), "c");
        assert_eq!(join("a", ""), "a");
        assert!(is_safe_relative("model/MLmodel"));
        for bad in ["", "/x", "a//b", "a/../b", ".", "a\\b", "a/\nb"] {
            assert!(!is_safe_relative(bad), "{bad:?}");
        }
    }
}
