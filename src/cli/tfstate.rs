//! `tfdrift hash --tfstate`: the hash of every object a Terraform state names, computed
//! exactly as for a manifest (the same ignore rules), with the instance's address.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::hash::{HashValueError, Ignore};
use crate::core::ignore::Defaults;
use crate::intent::terraform::{self, Instance, MAX_STATE_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum TfstateError {
    #[error("cannot read {source_name}")]
    Io {
        source_name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}")]
    Read {
        source_name: String,
        #[source]
        source: terraform::ReadError,
    },
    #[error("{source_name}: {address} ({object})")]
    Hash {
        source_name: String,
        address: String,
        object: String,
        #[source]
        source: Box<HashValueError>,
    },
}

/// One state instance with its intent fingerprint.
#[derive(Debug)]
pub struct Hashed {
    pub instance: Instance,
    pub hash: String,
    /// The canonical fingerprint, rules applied.
    pub spec: Value,
}

/// `-o json`'s entry for one instance.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub hash: &'a str,
    pub address: &'a str,
}

impl Hashed {
    pub fn entry(&self) -> Entry<'_> {
        let id = &self.instance.id;
        Entry {
            kind: &id.kind,
            namespace: &id.namespace,
            name: &id.name,
            hash: &self.hash,
            address: &self.instance.address,
        }
    }

    /// `HASH  Kind/namespace/name  ADDRESS`.
    pub fn line(&self) -> String {
        format!(
            "{}  {}  {}",
            self.hash, self.instance.id, self.instance.address
        )
    }
}

/// What a state gave: its hashed instances, the rules they were hashed under (for live
/// objects to be hashed alike), and notes for stderr.
pub struct Outcome {
    pub hashed: Vec<Hashed>,
    pub rules: Ignore,
    pub notes: Vec<String>,
    /// Instances that do not describe an object: `ADDRESS: why`.
    pub invalid: Vec<String>,
}

/// Reads `path` (`-` for standard input), at most the state size limit.
pub fn read_input(path: &Path) -> Result<Vec<u8>, TfstateError> {
    let source_name = display(path);
    let limit = MAX_STATE_BYTES as u64 + 1;
    let mut input = Vec::new();
    if source_name == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut input)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut input))
    }
    .map_err(|source| TfstateError::Io {
        source_name,
        source,
    })?;
    Ok(input)
}

/// How an input is named in messages.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Hashes every supported instance of the state in `input` under `defaults` and the HPAs
/// the state manages.
pub fn hash_state(
    source_name: &str,
    input: Vec<u8>,
    defaults: Defaults,
) -> Result<Outcome, TfstateError> {
    let read = terraform::read(input).map_err(|source| TfstateError::Read {
        source_name: source_name.to_owned(),
        source,
    })?;
    let rules = Ignore::with_hpas(defaults, read.hpas.iter());
    let mut notes = read.notes;
    for r in &read.releases {
        notes.push(format!(
            "skipped {}: a Helm release ({}/{}): its objects are in the release record, which `tfdrift check` reads",
            r.address, r.namespace, r.name
        ));
    }
    let mut invalid = Vec::new();
    for u in &read.unjudged {
        match &u.why {
            terraform::Why::Invalid(why) => invalid.push(format!("{}: {why}", u.address)),
            why => notes.push(format!("skipped {}: {why}", u.address)),
        }
    }
    let mut hashed = Vec::with_capacity(read.instances.len());
    for instance in read.instances {
        let Some(object) = terraform::fingerprint_object(&instance) else {
            notes.push(format!(
                "skipped {}: {} is not a kind tfdrift hashes (tfdrift check judges it)",
                instance.address, instance.id
            ));
            continue;
        };
        let filtered = rules.filtered(&object);
        let (hash, spec, ignored) = match filtered {
            Some(Ok(h)) => h,
            Some(Err(source)) => {
                return Err(TfstateError::Hash {
                    source_name: source_name.to_owned(),
                    object: instance.id.to_string(),
                    address: instance.address,
                    source: Box::new(source),
                });
            }
            // Only supported kinds are read from state.
            None => continue,
        };
        if let Some(ignored) = ignored {
            notes.push(format!(
                "{}: left out by ignore rules: {ignored}",
                instance.address
            ));
        }
        hashed.push(Hashed {
            instance,
            hash,
            spec,
        });
    }
    Ok(Outcome {
        hashed,
        rules,
        notes,
        invalid,
    })
}
