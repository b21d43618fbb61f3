//! An `.npz` file read from disk one array at a time, so that reading a large
//! samples file holds its directory and the array being read, not the whole file:
//! each array streams through [`NpyStream`] and is checked against its CRC when
//! it ends. The same archives as [`crate::npz::Npz`] (uncompressed, ZIP64 too).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};

use crate::npz::{
    bad, data_len, data_start, dir_entry, directory_of, end_record, parse_npy_header, u16_at,
    u32_at, Crc, Dtype,
};

/// An entry's name (without `.npy`), where its bytes start, how many, its CRC.
struct Entry {
    name: String,
    start: u64,
    size: u64,
    crc: u32,
}

/// The directory of an `.npz` file on disk.
pub struct NpzFile {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// `len` bytes of `file` from `at` (fewer only when the file ends).
fn read_at(file: &mut File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut out = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut out)?;
    Ok(out)
}

impl NpzFile {
    /// Reads the directory of `path`; the message says what is wrong.
    pub fn open(path: &Path) -> Result<Self, String> {
        let io_err = |e: io::Error| format!("cannot read the samples: {e}");
        let mut file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        // The end record, its comment, and a ZIP64 locator (20 bytes) before it.
        let tail_len = len.min(65_536 + 22 + 20);
        let tail_at = len - tail_len;
        let tail = read_at(&mut file, tail_at, tail_len as usize).map_err(io_err)?;
        let eocd = end_record(&tail)?;
        let (n, dir_len, at) =
            directory_of(&tail, eocd, |at| read_at(&mut file, at as u64, 56).ok())?;
        let eocd_at = tail_at + eocd as u64;
        if (at as u64)
            .checked_add(dir_len as u64)
            .is_none_or(|end| end > eocd_at)
        {
            return Err(bad("the central directory lies outside the file"));
        }
        let dir = read_at(&mut file, at as u64, dir_len).map_err(io_err)?;
        let mut entries = Vec::with_capacity(n.min(1024));
        let mut at = 0usize;
        for _ in 0..n {
            let (entry, next) = dir_entry(&dir, at)?;
            at = next;
            let lh = read_at(&mut file, entry.local as u64, 30).map_err(io_err)?;
            let start = data_start(&lh, entry.local, &entry.name)? as u64;
            if start.saturating_add(entry.size as u64) > eocd_at {
                return Err(bad(&format!(
                    "{} is cut short (truncated file)",
                    entry.name
                )));
            }
            let name = &entry.name;
            entries.push(Entry {
                name: name.strip_suffix(".npy").unwrap_or(name).to_string(),
                start,
                size: entry.size as u64,
                crc: entry.crc as u32,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Array `name` as a stream of its elements' bytes; the message names it.
    pub fn stream(&self, name: &str) -> Result<NpyStream, String> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("holds no array {name}"))?;
        let fail = |why: String| format!("array {name}: {why}");
        let mut file = File::open(&self.path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        file.seek(SeekFrom::Start(entry.start))
            .map_err(|e| fail(e.to_string()))?;
        let mut input = BufReader::with_capacity(1 << 20, file).take(entry.size);
        // The header is at most 64 KiB (a 2-byte length) in version 1, and numpy's
        // headers are far shorter; read the fixed part, then the dictionary.
        let mut head = vec![0u8; 12.min(entry.size as usize)];
        input
            .read_exact(&mut head)
            .map_err(|_| fail("not an .npy array".into()))?;
        let dict_len = match head.get(6) {
            Some(1) => u16_at(&head, 8).unwrap_or(0) + 10,
            Some(2 | 3) => u32_at(&head, 8).unwrap_or(0) + 12,
            _ => 12,
        };
        if dict_len > head.len() {
            let mut rest = vec![0u8; dict_len - head.len()];
            input
                .read_exact(&mut rest)
                .map_err(|_| fail("header cut short".into()))?;
            head.extend_from_slice(&rest);
        }
        let (dtype, shape, start) = parse_npy_header(&head).map_err(fail)?;
        let want = data_len(dtype, &shape).map_err(fail)?;
        let mut crc = Crc::new();
        crc.update(&head[..start]);
        // Bytes read past the header belong to the data.
        let already = head[start..].to_vec();
        let left = entry.size - start as u64;
        if left != want as u64 {
            return Err(fail(format!(
                "shape {shape:?} needs {want} bytes, the entry holds {left}"
            )));
        }
        Ok(NpyStream {
            name: name.to_string(),
            dtype,
            shape,
            pending: already,
            input,
            crc,
            left,
            expected_crc: entry.crc,
        })
    }

    /// Array `name` read whole into memory (for the small arrays).
    pub fn read(&self, name: &str) -> Result<OwnedArray, String> {
        let mut s = self.stream(name)?;
        let mut data = vec![0u8; s.left as usize];
        s.read(&mut data)?;
        let (dtype, shape) = (s.dtype, s.shape.clone());
        s.finish()?;
        Ok(OwnedArray { dtype, shape, data })
    }
}

/// One array's data, read in order; [`NpyStream::finish`] checks its CRC.
pub struct NpyStream {
    name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape (C order).
    pub shape: Vec<usize>,
    pending: Vec<u8>,
    input: Take<BufReader<File>>,
    crc: Crc,
    left: u64,
    expected_crc: u32,
}

impl NpyStream {
    /// Fills `buf` with the next bytes of the data.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<(), String> {
        if buf.len() as u64 > self.left {
            return Err(format!("array {}: read past its end", self.name));
        }
        let from_pending = self.pending.len().min(buf.len());
        buf[..from_pending].copy_from_slice(&self.pending[..from_pending]);
        self.pending.drain(..from_pending);
        self.input
            .read_exact(&mut buf[from_pending..])
            .map_err(|e| format!("array {} is cut short: {e}", self.name))?;
        self.crc.update(buf);
        self.left -= buf.len() as u64;
        Ok(())
    }
    /// Checks that the whole array was read and matches its checksum.
    pub fn finish(self) -> Result<(), String> {
        if self.left != 0 {
            return Err(format!("array {}: not read to its end", self.name));
        }
        if self.crc.value() != self.expected_crc {
            return Err(format!(
                "not a valid .npz (zip) file: {}.npy fails its checksum (damaged file)",
                self.name
            ));
        }
        Ok(())
    }
}

/// An array read whole from an [`NpzFile`].
pub struct OwnedArray {
    /// Element type.
    pub dtype: Dtype,
    /// Shape (C order).
    pub shape: Vec<usize>,
    data: Vec<u8>,
}

impl OwnedArray {
    /// The array as [`crate::npz::Npz`] gives it.
    pub fn view(&self) -> crate::npz::Array<'_> {
        crate::npz::Array {
            dtype: self.dtype,
            shape: self.shape.clone(),
            data: &self.data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npz::{Npz, NpzWriter};

    /// The file reader reads what the in-memory one reads, and refuses what it
    /// refuses (truncation, a flipped byte) with an error, not a panic.
    #[test]
    fn arrays_read_from_disk_as_from_memory() {
        let (_dir, path) = crate::test_files::temp_file("a.npz");
        let mut w = NpzWriter::create(&path).unwrap();
        w.array("x", Dtype::F64, &[2, 3], |o| {
            (0..6).try_for_each(|v| o.write_all(&(v as f64 * 0.5).to_le_bytes()))
        })
        .unwrap();
        w.array("s", Dtype::U8, &[5000], |o| {
            o.write_all(&(0..5000).map(|i| (i % 251) as u8).collect::<Vec<_>>())
        })
        .unwrap();
        w.finish("mark").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let npz = Npz::parse(bytes.clone()).unwrap();
        let file = NpzFile::open(&path).unwrap();
        for name in ["x", "s"] {
            let a = file.read(name).unwrap();
            let b = npz.array(name).unwrap();
            assert_eq!((a.view().dtype, &a.view().shape), (b.dtype, &b.shape));
            assert_eq!(a.view().data, b.data);
        }
        // In pieces, as a stream.
        let mut s = file.stream("s").unwrap();
        let mut piece = [0u8; 1000];
        for i in 0..5 {
            s.read(&mut piece).unwrap();
            assert_eq!(piece[0], ((i * 1000) % 251) as u8);
        }
        s.finish().unwrap();
        assert!(file.stream("y").err().unwrap().contains("no array y"));
        for cut in [1, 30, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let read = NpzFile::open(&path).and_then(|f| f.read("s").map(|_| ()));
            assert!(read.is_err(), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[200] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let e = NpzFile::open(&path).and_then(|f| f.read("x").and(f.read("s")).map(|_| ()));
        assert!(e.unwrap_err().contains("checksum"));
    }
}
