//! Files the CLI writes (a CAR, a signed head, a fetched file, the backup cache): through a
//! temporary file beside the target, fsynced, renamed over it, then the folder fsynced — a
//! crash leaves the old file or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cairn_api::NodeApi;

/// Writes `out` by `fill`ing a temporary file beside it; on failure nothing is left.
pub fn write_atomic(out: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.cairn-tmp-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, out).with_context(|| format!("write {}", out.display()))?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the CAR of `path` (a CID or CID/path) to `output`.
pub fn export_car(api: &dyn NodeApi, path: &str, output: &Path) -> Result<()> {
    write_atomic(output, |f| {
        let mut w = std::io::BufWriter::new(f);
        api.car_export(path, &mut w)?;
        Ok(w.flush()?)
    })
}
