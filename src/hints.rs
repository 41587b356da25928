//! The catalogue of what dbxport tells a user to do. Every error a user can meet that has a
//! remedy is named here by an id (a [`Hint`] variant, documented with the mistake it stands for)
//! and paired with the one line that says what to do next. Error types and commands take the
//! line from here, so the same mistake reads the same everywhere and a change to what users are
//! told is made in one place. The bundle's error codes (spec §13) point at their entries from
//! the [`crate::bundle::ErrorCode`] table.
//!
//! A hint is printed as its own line after the message, `hint: <text>` ([`Hint`]'s `Display`).
//! A text may name values the message cannot know in advance (`{host}`); such an entry is
//! printed through [`Hint::with`], which fills them in.
//!
//! Two tests keep the catalogue whole: no `hint:` line is written anywhere else in `src/`, and
//! every entry is used somewhere.

use std::fmt;

/// What a printed hint line starts with.
const PREFIX: &str = "hint: ";

macro_rules! catalogue {
    ($( $(#[doc = $doc:literal])+ $id:ident => $text:literal ;)*) => {
        /// The id of an error a user can meet, paired with what to do about it
        /// ([`Hint::text`]). Each variant's documentation says which mistake it stands for.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Hint {
            $( $(#[doc = $doc])+ $id, )*
        }

        impl Hint {
            /// Every entry, in catalogue order.
            pub const ALL: &'static [Hint] = &[ $( Hint::$id, )* ];

            /// The id, as written in the catalogue (`JournalLocked`).
            pub const fn id(self) -> &'static str {
                match self { $( Hint::$id => stringify!($id), )* }
            }

            /// What to do, as written in the catalogue; `{name}` marks a value that
            /// [`Hint::with`] fills in.
            pub const fn text(self) -> &'static str {
                match self { $( Hint::$id => $text, )* }
            }
        }
    };
}

catalogue! {
    // ---- Bundles (the spec §13 codes that have a remedy; see bundle::ErrorCode) ----

    /// E100: the file is not a readable zip archive.
    NotAZip => "a bundle is the .zip (or .zip.age) file `dbxport export` or `dbxport pack` wrote; if this is a copy, it may be cut short: copy it again";
    /// E302: the bundle's format major version is newer than this dbxport reads.
    UnsupportedVersion => "this bundle needs a newer dbxport; upgrade dbxport and try again";
    /// E307: a record breaks the rules of its kind.
    RecordInvalid => "the bundle was altered or written by a broken tool; export it again from the source workspace";
    /// E400: sealed content and no identity or passphrase to open it.
    IdentityRequired => "pass --identity FILE (an age or SSH key) or --passphrase";
    /// E401: none of the given identities (or the passphrase) opens the sealed content.
    NoMatchingIdentity => "check that --identity names the key the bundle was sealed to, or that the passphrase is right";
    /// E401 for a passphrase whose scrypt work factor is above what dbxport accepts.
    WorkFactorTooHigh => "the bundle was sealed with a passphrase work factor above what dbxport opens (log2 N at most 18); have it re-sealed with dbxport, or with age -p at its defaults";
    /// E500: the output path already holds something.
    TargetNotEmpty => "choose another output, or pass --force to replace it";
    /// E501: the folder given is not a bag.
    NotABag => "give the folder that holds bagit.txt, or the folder `dbxport unpack` wrote into";
    /// E502: a file could not be read or written.
    Io => "check the path, that you may read (or write) it, and that the disk has room";
    /// E502: a write failed because the disk (or the quota, or the largest file the file
    /// system or a ulimit allows) is full.
    NoRoom => "make room on that disk, or write to another one (a FAT32 drive holds no file over 4 GiB)";
    /// E502: `unpack` found too little free space before writing anything.
    UnpackNoSpace => "free some space there, or unpack into a folder on another file system (-d DIR)";

    // ---- Keys and sealing ----

    /// A `--recipient` that is not an age or SSH public key.
    MalformedRecipient => "give the public key `dbxport keygen` (or `age-keygen`) printed, or --recipients-file FILE with one key per line";
    /// An identity file that holds no usable key.
    MalformedIdentity => "give the key file `dbxport keygen` (or `age-keygen`) wrote, or an unencrypted SSH private key";
    /// A recipients file with no key in it.
    EmptyRecipientsFile => "put one public key (age1…, ssh-ed25519 …, ssh-rsa …) on each line, or leave out --recipients-file";
    /// So many recipients that readers would refuse the age header.
    TooManyRecipients => "seal to fewer recipients (or to one shared key)";
    /// A key file (identity or recipients) that cannot be read.
    KeyFileUnreadable => "check the path, and that you may read the file";
    /// A passphrase is needed and there is no terminal to ask on.
    PassphraseNoTerminal => "set {env} or pass --passphrase-file FILE";
    /// `keygen` would overwrite an existing key file.
    KeyExists => "choose another -o, or pass --force";

    // ---- Output names ----

    /// `export --envelope` to a name that does not end in `.zip.age`.
    EnvelopeName => "change -o, or drop --envelope";
    /// `export` to a `.age` name without `--envelope`.
    AgeNameWithoutEnvelope => "add --envelope (with --recipient or --passphrase), or name the output *.zip";
    /// `pack` with recipients to a name that does not end in `.zip.age`.
    PackEnvelopeName => "change -o, or drop --recipient/--passphrase for a plain bundle";
    /// `pack` to a `.age` name without recipients.
    PackAgeNameWithoutRecipient => "add --recipient KEY (or --passphrase), or name the output *.zip";
    /// `--envelope` without anyone to seal it to.
    EnvelopeNeedsRecipients => "add --recipient KEY, --recipients-file FILE or --passphrase";

    // ---- Export ----

    /// `--include` and `--exclude` leave no kind to export.
    NothingToExport => "check --include and --exclude";
    /// A kind that is neither a kind nor a kind group.
    UnknownKind => "kinds are {kinds}";
    /// An `--exclude` word that is neither a kind nor a path glob.
    ExcludeNotAGlob => "a workspace path glob starts with / or *";
    /// `--notebook-format` names no notebook format.
    NotebookFormat => "use jupyter, html, dbc or r_markdown (source is always exported)";
    /// A model registry asked for kinds other than models.
    RegistryHoldsModelsOnly => "export other kinds with `dbxport export`";
    /// The export's output path already exists.
    OutputExists => "choose another output path, or remove the file first";
    /// An interrupted export's staging folder is there and `--resume` was not given.
    StagingExists => "add --resume to finish it, or remove the folder to start over";
    /// The staging folder cannot be resumed.
    StagingUnusable => "remove the folder to start over";
    /// `--resume` seals to other recipients than the interrupted run did.
    RecipientsChanged => "resume with the same --recipient/--recipients-file or passphrase as the interrupted run, or remove the folder to start over";
    /// An export stopped on an error after it began staging.
    ExportStopped => "fix the cause, then run the same command with --resume to continue";
    /// An export stopped because the disk that holds its staging folder or output is full.
    ExportNoRoom => "make room on the disk that holds {staging} (or move that folder to a disk with room, with -o naming the same file beside it), then run the command again with --resume: what was fetched so far is kept there";
    /// Objects failed with 403: the token's user may not read them.
    ExportPermissionDenied => "the objects marked failed are not in the bundle: the workspace let this token read only part of it; export with the token of a user who may read them (a workspace admin's), or leave them out with --exclude";
    /// Objects failed for other reasons.
    ExportObjectsFailed => "the objects marked failed are not in the bundle; each line says why: fix that and export again, or leave them out with --exclude";
    /// A run was interrupted (Ctrl-C) and can be resumed.
    ResumeToFinish => "run the same command with --resume to finish";

    // ---- Import ----

    /// A bundle with sealed secret values to import and no identity.
    IdentityForSecrets => "pass --identity FILE (the age or SSH key the bundle was sealed to) or --passphrase, or leave secrets out with --exclude secret";
    /// `--resume` with other options than the interrupted run.
    ResumeOptionsChanged => "resume with the same options, or remove the journal to start over";
    /// `--include` names only kinds import never replays.
    OnlyReferenceKinds => "they are on the plan's \"must recreate\" list whatever --include says; include a kind to replay";
    /// The mapping file cannot be read or parsed.
    MappingFile => "see the README section \"Mapping file\" for the format";
    /// The plan refuses some items.
    PlanRefused => "each refused item says why: map principals and clusters in a mapping file (--map FILE, see the README's \"Mapping file\"), or pass --on-conflict skip|overwrite for objects the target already holds; then plan again";
    /// The plan lists items import cannot carry out.
    PlanCannot => "import would carry out the rest and report the items marked cannot; fix what each says (a missing catalog, --warehouse-id) to include them";
    /// An import was interrupted; its journal lets it finish.
    ImportInterrupted => "run the same command with --resume to finish (journal {journal})";

    // ---- Journals ----

    /// Another run holds the journal's lock.
    JournalLocked => "wait for it to finish, or stop it before resuming";
    /// The journal belongs to another bundle or target.
    JournalMismatch => "remove it to start over, or resume with the same bundle and target";
    /// An interrupted run's journal is there and `--resume` was not given.
    JournalExists => "add --resume to finish it, or remove the journal to start over";
    /// A line in the middle of the journal is damaged.
    JournalDamaged => "the journal was edited or the disk is failing; remove it to start over";
    /// `import --report` names a file that cannot be written (a folder, a missing folder, no
    /// permission, no room).
    ReportFile => "name a file in a folder you can write to, or leave out --report";

    // ---- Models ----

    /// A `--model` glob that does not parse.
    ModelGlob => "give a glob such as `churn-*` (quote it in the shell)";
    /// The `--model` globs cannot be combined.
    ModelGlobs => "check the globs";
    /// `--model-artifact-path` is neither dbfs:/ nor /Volumes/.
    ModelArtifactPath => "give a folder such as dbfs:/dbxport/model-artifacts or /Volumes/main/default/staging";
    /// `--mlflow-uri` is not a URL.
    MlflowUri => "give the server's URL, e.g. http://127.0.0.1:5000";
    /// `--mlflow-experiment` is empty.
    MlflowExperiment => "give an experiment name such as dbxport-imports";
    /// No model registry to talk to.
    NoRegistry => "pass --mlflow-uri URL for an MLflow server, or the workspace flags (--host, --profile)";
    /// A model version's source run is gone.
    SourceRunMissing => "restore the run, or leave this version out with --model-versions";
    /// A version's artifacts are not served by the MLflow server's proxy.
    ArtifactsNotProxied => "start the server with --serve-artifacts and an --artifacts-destination that holds them";
    /// A UC model version whose files are in customer-hosted storage (cloud credentials).
    UcCustomerStorage => "export that model from its cloud storage with the cloud's own tools, or leave it out with --models";
    /// A Unity Catalog model's catalog or schema is missing in the target.
    UcSchemaMissing => "create the catalog and schema in the target first, or map them to existing ones with [catalogs] / [schemas] in the mapping file";
    /// `--models-to-uc` is not a CATALOG.SCHEMA name.
    ModelsToUc => "give the target schema as CATALOG.SCHEMA, e.g. --models-to-uc main.ml";
    /// An artifact URI that refers to itself.
    ArtifactUriLoop => "check the version's source";
    /// An experiment whose new runs store artifacts the proxy does not serve.
    ExperimentNotProxied => "start the server with --serve-artifacts, or pick another --mlflow-experiment";
    /// A model of the same name with other content exists in the target.
    ModelConflict => "rerun with --on-conflict skip to leave it, or --on-conflict overwrite to add the bundle's versions to it";
    /// A models import stopped; its journal lets it finish.
    ModelsImportStopped => "the import stopped; the journal {journal} keeps everything done so far: fix the cause, then run the same command with --resume";

    // ---- Workspace connection ----

    /// The workspace refused the credentials (401, or 403 about the token).
    CredentialsRefused => "the workspace refused the credentials; check the token or OAuth client (DATABRICKS_TOKEN, --profile, ~/.databrickscfg) and the host";
    /// The OAuth token endpoint refused the client id and secret.
    OauthClientRefused => "check DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET (or the profile's client_id / client_secret)";
    /// The host answers with HTML pages, not the API.
    NotTheApi => "give the workspace URL itself (https://<workspace>.cloud.databricks.com, https://adb-<id>.<n>.azuredatabricks.net, …) with --host, DATABRICKS_HOST or the profile's host; a proxy that answers with its own pages must let the API through";
    /// An answer larger than dbxport reads into memory.
    ResponseTooLarge => "check the URL (--host, DATABRICKS_HOST or the profile's host); if it is right, raise the limit with --max-response-mb or DBXPORT_MAX_RESPONSE_MB";
    /// Nothing answered at the host.
    Unreachable => "nothing answered at {host} ({attempts} attempts); check the host (--host, DATABRICKS_HOST or the profile's host) and this machine's network (proxy, VPN, firewall)";
    /// The host name does not resolve (DNS).
    UnknownHost => "no address found for {name} ({attempts} attempts); check the host's spelling (--host, DATABRICKS_HOST or the profile's host), and that this machine can resolve it (a private workspace may need the VPN)";
    /// `--profile` names a profile the config file does not have.
    NoSuchProfile => "profiles in the file: {profiles}; pick one with --profile or DATABRICKS_CONFIG_PROFILE";
    /// Attributes of more than one auth method are set.
    AmbiguousAuth => "keep only one, or choose one with --auth-type / DATABRICKS_AUTH_TYPE (pat, oauth-m2m, databricks-cli, external-browser, azure-cli, azure-client-secret or azure-msi)";
    /// No workspace host anywhere.
    NoHost => "pass --host URL, set DATABRICKS_HOST, or name a profile of ~/.databrickscfg with --profile";
    /// The host is not a usable URL.
    InvalidHost => "use the workspace URL, e.g. https://adb-123.4.azuredatabricks.net";
    /// A host but no credentials.
    NoCredentials => "set DATABRICKS_TOKEN (a personal access token), or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (OAuth M2M), or ARM_CLIENT_ID, ARM_CLIENT_SECRET and ARM_TENANT_ID (an Azure service principal); or sign in with `databricks auth login --host {host}`, `az login`, or --auth-type external-browser; or use a profile with --profile";
    /// Personal access token auth without a token.
    MissingToken => "set DATABRICKS_TOKEN, or `token` in the profile";
    /// OAuth M2M without a client id.
    MissingClientId => "set DATABRICKS_CLIENT_ID, --client-id, or `client_id` in the profile";
    /// OAuth M2M without a client secret.
    MissingClientSecret => "set DATABRICKS_CLIENT_SECRET, or `client_secret` in the profile";
    /// An auth type dbxport does not implement.
    UnsupportedAuth => "use one of pat, oauth-m2m, databricks-cli, external-browser, azure-cli, azure-client-secret, azure-msi (--auth-type or DATABRICKS_AUTH_TYPE)";
    /// A method that keeps its sign-in in ~/.databricks and no home directory.
    MissingHome => "set HOME: sign-ins are kept in ~/.databricks/token-cache.json";
    /// Azure client credentials without a client id.
    MissingArmClientId => "set ARM_CLIENT_ID, or `azure_client_id` in the profile";
    /// Azure client credentials without a client secret.
    MissingArmClientSecret => "set ARM_CLIENT_SECRET, or `azure_client_secret` in the profile";
    /// The Databricks CLI's sign-in expired or was revoked.
    CliSignInAgain => "sign in again with `databricks auth login {target}`";
    /// No Databricks CLI sign-in for this workspace.
    CliNoSignIn => "sign in with `databricks auth login --host {host}`, or set databricks_cli_path";
    /// `databricks_cli_path` names nothing that runs.
    CliNotInstalled => "install the Databricks CLI, or set databricks_cli_path";
    /// A browser sign-in kept in the cache expired or was revoked.
    BrowserSignInAgain => "sign in again: run the command with --auth-type external-browser";
    /// The loopback port of a browser sign-in is taken.
    BrowserPortTaken => "free the port, or choose another with --oauth-redirect-port (the OAuth application must allow it)";
    /// Nobody finished the browser sign-in in time.
    BrowserTimeout => "open the address shown above in a browser and sign in; run again to get a new one";
    /// The user refused the browser sign-in.
    BrowserDenied => "run the command again and allow the access";
    /// The token endpoint refused the authorization code.
    BrowserCodeRefused => "run the command again to sign in afresh";
    /// Entra ID refused an Azure service principal.
    AzureSpRefused => "check ARM_CLIENT_ID, ARM_CLIENT_SECRET and ARM_TENANT_ID (or the profile's azure_client_id, azure_client_secret, azure_tenant_id) and azure_environment";
    /// No Azure tenant configured and the workspace does not name it.
    AzureTenantUnknown => "set ARM_TENANT_ID, or `azure_tenant_id` in the profile";
    /// The managed identity endpoint refused.
    AzureMsiRefused => "check that this machine has a managed identity with access to the workspace (ARM_CLIENT_ID names a user-assigned one)";
    /// The Azure CLI is not signed in.
    AzLogin => "run `az login`";
    /// `az account get-access-token` failed otherwise.
    AzFailed => "run `az login` with an account that can reach the workspace (and check azure_tenant_id)";
    /// `azure-cli` with no `az` to run.
    AzNotInstalled => "install the Azure CLI and run `az login`, or choose another --auth-type";

    // ---- Other commands ----

    /// `inspect` stopped at the first problem.
    InspectStopped => "`dbxport verify {bundle}` lists every problem";
    /// `man --out` to a folder that cannot be written.
    ManFolder => "choose a folder you can write";
    /// `man` names a command that does not exist.
    ManNoCommand => "one of: {commands}";
    /// The demo's seed workspaces are not found.
    DemoFixtures => "run the demo from the dbxport source tree, or pass --fixtures DIR";
    /// The demo's folder holds something the demo did not make.
    DemoFolderTaken => "pass --dir with another folder";
    /// `emulator` with no token to accept.
    EmulatorNoToken => "pass --token TOKEN (a made-up value), or a --seed whose tokens.json lists tokens";
    /// `emulator --rate-limit` names an unknown endpoint family.
    EmulatorFamily => "families are {families}";
    /// The emulator's address is taken.
    EmulatorAddrInUse => "pass --addr with another port, or port 0 to pick a free one";
}

impl Hint {
    /// The text with each `{name}` replaced by its value from `values`.
    pub fn fill(self, values: &[(&str, &dyn fmt::Display)]) -> String {
        let mut out = self.text().to_string();
        for (name, value) in values {
            let mark = format!("{{{name}}}");
            debug_assert!(out.contains(&mark), "hint {}: no {mark} to fill", self.id());
            out = out.replace(&mark, &value.to_string());
        }
        debug_assert!(
            placeholders(&out).is_empty(),
            "hint {}: {:?} left unfilled",
            self.id(),
            placeholders(&out)
        );
        out
    }

    /// The hint line, with each `{name}` replaced by its value from `values`.
    pub fn with(self, values: &[(&str, &dyn fmt::Display)]) -> Filled {
        Filled(self.fill(values))
    }
}

/// Prints the hint line, `hint: <text>`. An entry with values to fill in is printed through
/// [`Hint::with`] instead.
impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_assert!(
            placeholders(self.text()).is_empty(),
            "hint {} has values to fill in: use Hint::with",
            self.id()
        );
        write!(f, "{PREFIX}{}", self.text())
    }
}

/// A hint line whose values are filled in ([`Hint::with`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled(String);

impl Filled {
    /// The text, without the `hint: ` prefix.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Filled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.0)
    }
}

/// The `{name}` marks in `text`.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `src/`.
    fn sources() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out.sort();
        assert!(out.len() > 50, "found only {} source files", out.len());
        out
    }

    /// One piece of Rust source: code, or a string literal's contents (with its line).
    #[derive(Debug, PartialEq)]
    enum Piece {
        Code(String),
        Str(usize, String),
    }

    /// Splits Rust source into code and string literals, dropping comments. Enough of the
    /// lexer to tell `"…hint:…"` from `// hint:` and from a char literal such as `'"'`.
    fn lex(src: &str) -> Vec<Piece> {
        let b: Vec<char> = src.chars().collect();
        let (mut i, mut line) = (0, 1);
        let mut out = Vec::new();
        let mut code = String::new();
        let flush = |code: &mut String, out: &mut Vec<Piece>| {
            if !code.is_empty() {
                out.push(Piece::Code(std::mem::take(code)));
            }
        };
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            if c == '\n' {
                line += 1;
            }
            if c == '/' && next == Some('/') {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            if c == '/' && next == Some('*') {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if b[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
                continue;
            }
            // Raw strings: r"…", r#"…"#, br"…".
            let raw_at = if c == 'r' {
                Some(i + 1)
            } else if c == 'b' && next == Some('r') {
                Some(i + 2)
            } else {
                None
            };
            let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
            if let Some(mut j) = raw_at.filter(|_| !ident_before) {
                let mut hashes = 0;
                while b.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) == Some(&'"') {
                    flush(&mut code, &mut out);
                    let start_line = line;
                    let mut s = String::new();
                    j += 1;
                    loop {
                        if j >= b.len() {
                            break;
                        }
                        if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                            j += 1 + hashes;
                            break;
                        }
                        if b[j] == '\n' {
                            line += 1;
                        }
                        s.push(b[j]);
                        j += 1;
                    }
                    out.push(Piece::Str(start_line, s));
                    i = j;
                    continue;
                }
            }
            if c == '"' {
                flush(&mut code, &mut out);
                let start_line = line;
                let mut s = String::new();
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' && i + 1 < b.len() {
                        s.push(b[i]);
                        i += 1;
                    }
                    if b[i] == '\n' {
                        line += 1;
                    }
                    s.push(b[i]);
                    i += 1;
                }
                out.push(Piece::Str(start_line, s));
                i += 1;
                continue;
            }
            if c == '\'' {
                // A char literal ('x', '\n', '\'', '\u{..}'), or a lifetime ('a).
                let end = if next == Some('\\') {
                    (i + 2..b.len().min(i + 12)).find(|&k| b[k] == '\'' && k > i + 2)
                } else if b.get(i + 2) == Some(&'\'') {
                    Some(i + 2)
                } else {
                    None
                };
                if let Some(end) = end {
                    code.push_str("' '");
                    i = end + 1;
                    continue;
                }
            }
            code.push(c);
            i += 1;
        }
        flush(&mut code, &mut out);
        out
    }

    /// The pieces of `src` outside `#[cfg(test)]` items: what ships.
    fn shipped(src: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        // Depth of braces at which a test item started, while inside one.
        let mut skip_from: Option<usize> = None;
        let mut pending_test = false;
        let mut depth = 0usize;
        for p in lex(src) {
            match p {
                Piece::Code(c) => {
                    let mut kept = String::new();
                    let mut rest = c.as_str();
                    while !rest.is_empty() {
                        if skip_from.is_none() && rest.starts_with("#[cfg(test)]") {
                            pending_test = true;
                            rest = &rest["#[cfg(test)]".len()..];
                            continue;
                        }
                        let ch = rest.chars().next().unwrap();
                        rest = &rest[ch.len_utf8()..];
                        match ch {
                            '{' => {
                                if pending_test {
                                    skip_from = Some(depth);
                                    pending_test = false;
                                }
                                depth += 1;
                            }
                            '}' => {
                                depth = depth.saturating_sub(1);
                                if skip_from == Some(depth) {
                                    skip_from = None;
                                    continue;
                                }
                            }
                            // `#[cfg(test)] use …;` or a test-only statement.
                            ';' if pending_test => pending_test = false,
                            _ => {}
                        }
                        if skip_from.is_none() {
                            kept.push(ch);
                        }
                    }
                    out.push(Piece::Code(kept));
                }
                s @ Piece::Str(..) => {
                    if skip_from.is_none() && !pending_test {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    fn relative(p: &Path) -> String {
        p.strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display()
            .to_string()
    }

    fn is_catalogue(p: &Path) -> bool {
        p.ends_with("src/hints.rs")
    }

    #[test]
    fn the_lexer_tells_strings_from_comments_and_chars() {
        let src = "let a = '\"'; // \"hint: no\"\nlet b = \"x hint: y\"; /* \"hint: z\" */ let c = r#\"q \"hint: r\"#; fn f<'a>(x: &'a str) {}\n#[cfg(test)]\nmod t { const S: &str = \"hint: test\"; }\nconst T: &str = \"after\";";
        let strs: Vec<String> = shipped(src)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Str(_, s) => Some(s),
                Piece::Code(_) => None,
            })
            .collect();
        assert_eq!(strs, vec!["x hint: y", "q \"hint: r", "after"]);
    }

    /// No `hint:` line is written outside the catalogue: a string literal in shipped code
    /// that holds `hint:` is a hint that bypasses it.
    #[test]
    fn no_hint_is_written_outside_the_catalogue() {
        let mut found = Vec::new();
        for path in sources().iter().filter(|p| !is_catalogue(p)) {
            let src = std::fs::read_to_string(path).unwrap();
            for p in shipped(&src) {
                if let Piece::Str(line, s) = p {
                    if s.contains("hint:") {
                        found.push(format!("{}:{line}: \"{s}\"", relative(path)));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "hints written outside src/hints.rs (add an entry to the catalogue and use it):\n{}",
            found.join("\n")
        );
    }

    /// Every entry is used by shipped code somewhere (an entry nothing uses is a hint no user
    /// sees, and a sign the message it belonged to changed).
    #[test]
    fn every_entry_is_used() {
        let mut code = String::new();
        for path in sources().iter().filter(|p| !is_catalogue(p)) {
            for p in shipped(&std::fs::read_to_string(path).unwrap()) {
                if let Piece::Code(c) = p {
                    code.push_str(&c);
                    code.push(' ');
                }
            }
        }
        let unused: Vec<&str> = Hint::ALL
            .iter()
            .filter(|h| {
                let name = format!("Hint::{}", h.id());
                !code.match_indices(&name).any(|(at, _)| {
                    !code[at + name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
            .map(|h| h.id())
            .collect();
        assert!(
            unused.is_empty(),
            "catalogue entries nothing uses: {unused:?}"
        );
    }

    #[test]
    fn entries_are_unique_one_line_and_fill_their_values() {
        let mut texts = HashSet::new();
        for h in Hint::ALL {
            let t = h.text();
            assert!(
                texts.insert(t),
                "{}: the same text as another entry",
                h.id()
            );
            assert!(!t.contains('\n') && !t.starts_with("hint"), "{}", h.id());
            assert!(!t.ends_with('.'), "{}: hints end without a period", h.id());
            let names = placeholders(t);
            if names.is_empty() {
                assert_eq!(h.to_string(), format!("hint: {t}"));
            } else {
                let values: Vec<(&str, &dyn fmt::Display)> =
                    names.iter().map(|n| (*n, n as &dyn fmt::Display)).collect();
                let filled = h.with(&values);
                assert!(placeholders(filled.text()).is_empty(), "{}", h.id());
                assert!(filled.to_string().starts_with("hint: "));
            }
        }
        assert_eq!(
            Hint::Unreachable
                .with(&[("host", &"https://x.example"), ("attempts", &3)])
                .to_string(),
            "hint: nothing answered at https://x.example (3 attempts); check the host (--host, DATABRICKS_HOST or the profile's host) and this machine's network (proxy, VPN, firewall)"
        );
    }
}
