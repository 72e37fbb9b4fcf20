//! Saying what drifted and who did it: the baseline record, the field-level diff of two
//! fingerprints, and attribution from `managedFields`.

pub mod attribution;
pub mod diff;
