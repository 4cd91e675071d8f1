//! PHP `serialize()` format (placeholder, being written).
