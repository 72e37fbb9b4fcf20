//! An instance as the operator keeps it while a state names its object: its intent object
//! deflated (a Deployment's intent is a few kilobytes of JSON, a few hundred bytes deflated),
//! and a digest of everything it is judged by, so that reading a state again tells an
//! unchanged intent from a changed one without keeping the old one whole.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use sha2::{Digest, Sha256};

use super::{Instance, Source};
use crate::core::object::ObjectId;

/// One instance, its intent object deflated.
#[derive(Clone)]
pub struct Compact {
    pub address: Box<str>,
    pub resource_type: Box<str>,
    pub api_version: Box<str>,
    pub uid: Option<Box<str>>,
    pub source: Source,
    object: Box<[u8]>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("cannot deflate the intent of {address}")]
    Deflate {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the kept intent of {address} is corrupt")]
    Inflate {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

impl Compact {
    pub fn new(instance: &Instance) -> Result<Compact, CompactError> {
        let deflate = |json: &[u8]| -> std::io::Result<Vec<u8>> {
            let mut enc = DeflateEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(json)?;
            enc.finish()
        };
        // `Value` serialises infallibly: its keys are strings.
        let json = serde_json::to_vec(&instance.object).unwrap_or_default();
        let object = deflate(&json).map_err(|source| CompactError::Deflate {
            address: instance.address.clone(),
            source,
        })?;
        Ok(Compact {
            address: instance.address.as_str().into(),
            resource_type: instance.resource_type.as_str().into(),
            api_version: instance.api_version.as_str().into(),
            uid: instance.uid.as_deref().map(Into::into),
            source: instance.source.clone(),
            object: object.into_boxed_slice(),
        })
    }

    /// The instance again, for the object `id`.
    pub fn expand(&self, id: &ObjectId) -> Result<Instance, CompactError> {
        let corrupt = |source: std::io::Error| CompactError::Inflate {
            address: self.address.to_string(),
            source,
        };
        let mut json = Vec::with_capacity(self.object.len() * 4);
        DeflateDecoder::new(&self.object[..])
            .read_to_end(&mut json)
            .map_err(corrupt)?;
        let object = serde_json::from_slice(&json).map_err(|e| corrupt(e.into()))?;
        Ok(Instance {
            address: self.address.to_string(),
            resource_type: self.resource_type.to_string(),
            id: id.clone(),
            api_version: self.api_version.to_string(),
            uid: self.uid.as_deref().map(str::to_owned),
            object,
            source: self.source.clone(),
        })
    }

    /// Whether this instance is one that makes its object (not a patch-style one).
    pub fn creates(&self) -> bool {
        !matches!(self.source, Source::Patch)
    }

    /// Feeds what this instance is judged by into `hasher`.
    pub fn digest(&self, hasher: &mut Sha256) {
        for part in [
            self.address.as_bytes(),
            self.api_version.as_bytes(),
            self.uid.as_deref().unwrap_or("").as_bytes(),
            format!("{:?}", self.source).as_bytes(),
            &self.object,
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }

    /// How many bytes the kept intent object takes.
    pub fn size(&self) -> usize {
        self.object.len()
    }
}

impl std::fmt::Debug for Compact {
    /// The address only: the object may hold values from the state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compact({})", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_comes_back_as_it_went_in_and_its_digest_follows_its_content() {
        let instance = Instance {
            address: "kubernetes_config_map_v1.cfg".into(),
            resource_type: "kubernetes_config_map_v1".into(),
            id: ObjectId::new("ConfigMap", "app", "cfg"),
            api_version: "v1".into(),
            uid: Some("u-1".into()),
            object: serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": "app"}, "data": {"a": "", "b": "2"}}),
            source: Source::Manifest {
                computed: Vec::new(),
            },
        };
        let compact = Compact::new(&instance).unwrap();
        let back = compact.expand(&instance.id).unwrap();
        assert_eq!(back.object, instance.object);
        assert_eq!(back.address, instance.address);
        assert_eq!(back.uid, instance.uid);
        assert!(format!("{compact:?}").contains("cfg") && !format!("{compact:?}").contains('2'));
        let digest = |c: &Compact| {
            let mut h = Sha256::new();
            c.digest(&mut h);
            h.finalize()
        };
        let mut changed = instance.clone();
        changed.object["data"]["b"] = "3".into();
        assert_eq!(digest(&compact), digest(&Compact::new(&instance).unwrap()));
        assert_ne!(digest(&compact), digest(&Compact::new(&changed).unwrap()));
    }
}
