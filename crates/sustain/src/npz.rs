//! NumPy `.npz` files (a zip of `.npy` arrays, entries stored uncompressed), as
//! `numpy.load` reads them: written as a stream (each array's bytes go straight
//! to the file; its CRC is patched in afterwards) and read back with every length,
//! offset and checksum checked, so a truncated or edited file is an error, never
//! a panic. Archives beyond 4 GiB get ZIP64 records, as Python's zipfile writes.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// Element types of the arrays written here (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `|u1`
    U8,
    /// `<u2`
    U16,
    /// `<u4`
    U32,
    /// `<i4`
    I32,
    /// `<f8`
    F64,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::U16 => "<u2",
            Dtype::U32 => "<u4",
            Dtype::I32 => "<i4",
            Dtype::F64 => "<f8",
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::U32 | Dtype::I32 => 4,
            Dtype::F64 => 8,
        }
    }
    fn from_descr(d: &str) -> Option<Self> {
        Some(match d {
            "|u1" | "<u1" | "u1" => Dtype::U8,
            "<u2" => Dtype::U16,
            "<u4" => Dtype::U32,
            "<i4" => Dtype::I32,
            "<f8" => Dtype::F64,
            _ => return None,
        })
    }
}

/// CRC-32 (IEEE), as zip stores it.
#[derive(Clone)]
pub(crate) struct Crc(u32);

impl Crc {
    fn table() -> &'static [u32; 256] {
        static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| {
            let mut t = [0u32; 256];
            for (i, v) in t.iter_mut().enumerate() {
                let mut c = i as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
                *v = c;
            }
            t
        })
    }
    pub(crate) fn new() -> Self {
        Crc(0xFFFF_FFFF)
    }
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let t = Self::table();
        let mut c = self.0;
        for &b in bytes {
            c = t[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    pub(crate) fn value(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

/// The `.npy` header (format 1.0) of an array, padded to 64 bytes as numpy does.
fn npy_header(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        dtype.descr()
    );
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Fixed zip timestamps (1980-01-01 00:00) keep the bytes a function of the data.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = 0x21;

struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// Writes `.npz` entries one array at a time.
pub struct NpzWriter {
    file: BufWriter<File>,
    entries: Vec<Entry>,
    offset: u64,
    /// Sizes and offsets from this one on are written as ZIP64 (4 GiB; smaller in
    /// tests, to exercise it).
    limit: u64,
}

/// The value of a 4-byte zip field that says "see the ZIP64 record".
pub(crate) const SEE_ZIP64: u32 = u32::MAX;

/// A 4-byte field of `v`, or [`SEE_ZIP64`] from `limit` on.
fn field32(v: u64, limit: u64) -> u32 {
    if v >= limit {
        SEE_ZIP64
    } else {
        v as u32
    }
}

/// Counts and checksums the bytes written through it.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    crc: Crc,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl NpzWriter {
    /// Starts a new file at `path` (replacing one there).
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::with_limit(path, u64::from(SEE_ZIP64))
    }

    fn with_limit(path: &Path, limit: u64) -> io::Result<Self> {
        Ok(Self {
            file: BufWriter::with_capacity(1 << 20, File::create(path)?),
            entries: Vec::new(),
            offset: 0,
            limit,
        })
    }

    /// Adds `{name}.npy` of `dtype` and `shape`; `fill` writes its elements, C
    /// order, little-endian (exactly the product of `shape` of them).
    pub fn array(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let name = format!("{name}.npy");
        let header = npy_header(dtype, shape);
        let data_len = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
        let size = header.len() as u64 + data_len;
        let zip64 = size >= self.limit;
        // The local header, its CRC patched in once the data is written.
        let mut local = Vec::with_capacity(50 + name.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes()); // version needed
        local.extend_from_slice(&0u16.to_le_bytes()); // flags
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&DOS_TIME.to_le_bytes());
        local.extend_from_slice(&DOS_DATE.to_le_bytes());
        local.extend_from_slice(&0u32.to_le_bytes()); // CRC, patched below
        local.extend_from_slice(&field32(size, self.limit).to_le_bytes());
        local.extend_from_slice(&field32(size, self.limit).to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
        local.extend_from_slice(name.as_bytes());
        if zip64 {
            local.extend_from_slice(&1u16.to_le_bytes());
            local.extend_from_slice(&16u16.to_le_bytes());
            local.extend_from_slice(&size.to_le_bytes());
            local.extend_from_slice(&size.to_le_bytes());
        }
        self.file.write_all(&local)?;
        let mut w = Counting {
            inner: &mut self.file,
            crc: Crc::new(),
            written: 0,
        };
        w.write_all(&header)?;
        fill(&mut w)?;
        let (crc, written) = (w.crc.value(), w.written);
        if written != size {
            return Err(io::Error::other(format!(
                "{name}: {written} bytes written, the shape needs {size}"
            )));
        }
        let end = self.offset + local.len() as u64 + written;
        self.file.seek(SeekFrom::Start(self.offset + 14))?;
        self.file.write_all(&crc.to_le_bytes())?;
        self.file.seek(SeekFrom::Start(end))?;
        self.entries.push(Entry {
            name,
            crc,
            size,
            offset: self.offset,
        });
        self.offset = end;
        Ok(())
    }

    /// Writes the central directory (with `comment` as the archive's comment) and
    /// flushes the file to disk.
    pub fn finish(mut self, comment: &str) -> io::Result<()> {
        let limit = self.limit;
        let start = self.offset;
        let mut dir = Vec::new();
        for e in &self.entries {
            let zip64 = e.size >= limit || e.offset >= limit;
            let version: u16 = if zip64 { 45 } else { 20 };
            dir.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            dir.extend_from_slice(&version.to_le_bytes()); // made by
            dir.extend_from_slice(&version.to_le_bytes()); // needed
            dir.extend_from_slice(&0u16.to_le_bytes());
            dir.extend_from_slice(&0u16.to_le_bytes());
            dir.extend_from_slice(&DOS_TIME.to_le_bytes());
            dir.extend_from_slice(&DOS_DATE.to_le_bytes());
            dir.extend_from_slice(&e.crc.to_le_bytes());
            // With ZIP64, every size and the offset are in its extra field.
            let (size, offset) = if zip64 {
                (SEE_ZIP64, SEE_ZIP64)
            } else {
                (e.size as u32, e.offset as u32)
            };
            dir.extend_from_slice(&size.to_le_bytes());
            dir.extend_from_slice(&size.to_le_bytes());
            dir.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            dir.extend_from_slice(&(if zip64 { 28u16 } else { 0 }).to_le_bytes());
            dir.extend_from_slice(&[0; 2 + 2 + 2 + 4]); // comment, disk, attributes
            dir.extend_from_slice(&offset.to_le_bytes());
            dir.extend_from_slice(e.name.as_bytes());
            if zip64 {
                dir.extend_from_slice(&1u16.to_le_bytes());
                dir.extend_from_slice(&24u16.to_le_bytes());
                for v in [e.size, e.size, e.offset] {
                    dir.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let n = self.entries.len() as u64;
        let dir_len = dir.len() as u64;
        let zip64 = n >= 0xFFFF || start >= limit || dir_len >= limit;
        if zip64 {
            let record = start + dir_len;
            dir.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            dir.extend_from_slice(&44u64.to_le_bytes());
            dir.extend_from_slice(&45u16.to_le_bytes());
            dir.extend_from_slice(&45u16.to_le_bytes());
            dir.extend_from_slice(&[0; 8]); // disk numbers
            for v in [n, n, dir_len, start] {
                dir.extend_from_slice(&v.to_le_bytes());
            }
            dir.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            dir.extend_from_slice(&0u32.to_le_bytes());
            dir.extend_from_slice(&record.to_le_bytes());
            dir.extend_from_slice(&1u32.to_le_bytes());
        }
        let n16 = if zip64 { 0xFFFF } else { n as u16 };
        dir.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        dir.extend_from_slice(&[0; 4]); // disk numbers
        dir.extend_from_slice(&n16.to_le_bytes());
        dir.extend_from_slice(&n16.to_le_bytes());
        let (dir_len, start) = if zip64 {
            (SEE_ZIP64, SEE_ZIP64)
        } else {
            (dir_len as u32, start as u32)
        };
        dir.extend_from_slice(&dir_len.to_le_bytes());
        dir.extend_from_slice(&start.to_le_bytes());
        dir.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        dir.extend_from_slice(comment.as_bytes());
        self.file.write_all(&dir)?;
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// One array of an `.npz` file read into memory.
#[derive(Debug)]
pub struct Array<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Shape (C order).
    pub shape: Vec<usize>,
    /// The elements' bytes, little-endian.
    pub data: &'a [u8],
}

impl Array<'_> {
    /// Element `i` as an integer (unsigned or `i32` arrays).
    pub fn int(&self, i: usize) -> i64 {
        let b = self.data;
        match self.dtype {
            Dtype::U8 => i64::from(b[i]),
            Dtype::U16 => i64::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])),
            Dtype::U32 => i64::from(u32::from_le_bytes(word(b, i))),
            Dtype::I32 => i64::from(i32::from_le_bytes(word(b, i))),
            Dtype::F64 => f64::from_bits(u64::from_le_bytes(dword(b, i))) as i64,
        }
    }
    /// Element `i` of an `f64` array.
    pub fn f64(&self, i: usize) -> f64 {
        f64::from_bits(u64::from_le_bytes(dword(self.data, i)))
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

fn word(b: &[u8], i: usize) -> [u8; 4] {
    [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]
}

fn dword(b: &[u8], i: usize) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&b[8 * i..8 * i + 8]);
    out
}

/// A whole `.npz` file in memory: its entries, by name.
pub struct Npz {
    bytes: Vec<u8>,
    /// (name without `.npy`, start of the entry's data, its length)
    entries: Vec<(String, usize, usize)>,
    comment: String,
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
    .ok()
}

/// The 8-byte values of the ZIP64 field (id 1) among a zip entry's extra fields.
pub(crate) fn zip64_extra(mut extra: &[u8]) -> Option<impl Iterator<Item = usize> + '_> {
    while extra.len() >= 4 {
        let (id, len) = (u16_at(extra, 0)?, u16_at(extra, 2)?);
        let body = extra.get(4..4 + len)?;
        if id == 1 {
            return Some(body.chunks_exact(8).filter_map(|c| u64_at(c, 0)));
        }
        extra = &extra[4 + len..];
    }
    None
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

impl std::fmt::Debug for Npz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(n, _, _)| n.as_str()).collect();
        write!(f, "Npz {names:?}")
    }
}

/// What a reader says of a file that is not a valid archive.
pub(crate) fn bad(why: &str) -> String {
    format!("not a valid .npz (zip) file: {why}")
}

/// Where, in `tail` (the end of a file), its end of central directory record
/// starts: the record and its comment end the file.
pub(crate) fn end_record(tail: &[u8]) -> Result<usize, String> {
    (0..tail.len().saturating_sub(21))
        .rev()
        .take(65_536 + 22)
        .find(|&i| {
            tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]
                && u16_at(tail, i + 20).is_some_and(|c| i + 22 + c == tail.len())
        })
        .ok_or_else(|| bad("no end of central directory (truncated?)"))
}

/// The number of entries, the length and the offset of the central directory
/// that the end record at `eocd` of `tail` names; `record(at)` reads the 56
/// bytes of a ZIP64 end record at file offset `at` (found through its locator,
/// just before the end record).
pub(crate) fn directory_of(
    tail: &[u8],
    eocd: usize,
    record: impl FnOnce(usize) -> Option<Vec<u8>>,
) -> Result<(usize, usize, usize), String> {
    let field = |at: usize| u16_at(tail, eocd + at).ok_or_else(|| bad("truncated"));
    let n = field(10)?;
    let dir_len = u32_at(tail, eocd + 12).ok_or_else(|| bad("truncated"))?;
    let at = u32_at(tail, eocd + 16).ok_or_else(|| bad("truncated"))?;
    let see64 = SEE_ZIP64 as usize;
    if n != 0xFFFF && dir_len != see64 && at != see64 {
        return Ok((n, dir_len, at));
    }
    let locator = eocd.checked_sub(20).ok_or_else(|| bad("truncated"))?;
    if u32_at(tail, locator) != Some(0x0706_4b50) {
        return Err(bad("no ZIP64 end record"));
    }
    let at = u64_at(tail, locator + 8).ok_or_else(|| bad("truncated"))?;
    let rec = record(at).ok_or_else(|| bad("truncated"))?;
    if u32_at(&rec, 0) != Some(0x0606_4b50) {
        return Err(bad("damaged ZIP64 end record"));
    }
    let big = |off: usize| u64_at(&rec, off).ok_or_else(|| bad("truncated"));
    Ok((big(32)?, big(40)?, big(48)?))
}

/// One central directory record: the entry's name, CRC, size and the offset of
/// its local header.
pub(crate) struct DirEntry {
    pub(crate) name: String,
    pub(crate) crc: usize,
    pub(crate) size: usize,
    pub(crate) local: usize,
}

/// The central directory record at `at` of `dir`, and where the next begins;
/// refuses compressed entries.
pub(crate) fn dir_entry(dir: &[u8], at: usize) -> Result<(DirEntry, usize), String> {
    let h = |off: usize| u16_at(dir, at + off).ok_or_else(|| bad("truncated"));
    let w = |off: usize| u32_at(dir, at + off).ok_or_else(|| bad("truncated"));
    if w(0)? != 0x0201_4b50 {
        return Err(bad("damaged central directory"));
    }
    let (method, crc, mut size, mut csize) = (h(10)?, w(16)?, w(24)?, w(20)?);
    let (name_len, extra_len, comment_len) = (h(28)?, h(30)?, h(32)?);
    let mut local = w(42)?;
    let name = dir
        .get(at + 46..at + 46 + name_len)
        .ok_or_else(|| bad("truncated"))?;
    let name = String::from_utf8_lossy(name).into_owned();
    let see64 = SEE_ZIP64 as usize;
    if [size, csize, local].contains(&see64) {
        // ZIP64: the fields that say so are in its extra field, in this order.
        let extra = dir
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or_else(|| bad("truncated"))?;
        let mut values = zip64_extra(extra).ok_or_else(|| bad("damaged ZIP64 field"))?;
        for v in [&mut size, &mut csize, &mut local] {
            if *v == see64 {
                *v = values.next().ok_or_else(|| bad("damaged ZIP64 field"))?;
            }
        }
    }
    if method != 0 || csize != size {
        return Err(format!(
            "{name} is compressed; only uncompressed .npz (numpy.savez) is read"
        ));
    }
    let next = at + 46 + name_len + extra_len + comment_len;
    Ok((
        DirEntry {
            name,
            crc,
            size,
            local,
        },
        next,
    ))
}

/// Where the data of entry `name` starts, from the first 30 bytes of its local
/// header (`lh`, at file offset `local`).
pub(crate) fn data_start(lh: &[u8], local: usize, name: &str) -> Result<usize, String> {
    if u32_at(lh, 0) != Some(0x0403_4b50) {
        return Err(bad(&format!("{name}: damaged entry")));
    }
    let skip = |off: usize| u16_at(lh, off).ok_or_else(|| bad("truncated"));
    Ok(local + 30 + skip(26)? + skip(28)?)
}

impl Npz {
    /// Parses `bytes` (a whole file); the message says what is wrong.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        let eocd = end_record(&bytes)?;
        let (n, dir_len, mut at) = directory_of(&bytes, eocd, |at| {
            Some(bytes.get(at..at.checked_add(56)?)?.to_vec())
        })?;
        let comment_len = u16_at(&bytes, eocd + 20).ok_or_else(|| bad("truncated"))?;
        let comment =
            String::from_utf8_lossy(&bytes[eocd + 22..eocd + 22 + comment_len]).into_owned();
        if at.checked_add(dir_len).is_none_or(|end| end > eocd) {
            return Err(bad("the central directory lies outside the file"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let (entry, next) = dir_entry(&bytes, at)?;
            at = next;
            let name = entry.name;
            let lh = bytes.get(entry.local..).ok_or_else(|| bad("truncated"))?;
            let start = data_start(lh, entry.local, &name)?;
            let size = entry.size;
            let data = bytes
                .get(start..start.saturating_add(size))
                .ok_or_else(|| bad(&format!("{name} is cut short (truncated file)")))?;
            let mut c = Crc::new();
            c.update(data);
            if c.value() as usize != entry.crc {
                return Err(bad(&format!("{name} fails its checksum (damaged file)")));
            }
            let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
            entries.push((key, start, size));
        }
        Ok(Self {
            bytes,
            entries,
            comment,
        })
    }

    /// The archive's comment.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Array `name`, its shape checked against its length; the message names it.
    pub fn array(&self, name: &str) -> Result<Array<'_>, String> {
        let &(_, start, size) = self
            .entries
            .iter()
            .find(|(n, _, _)| n == name)
            .ok_or_else(|| format!("holds no array {name}"))?;
        parse_npy(&self.bytes[start..start + size]).map_err(|why| format!("array {name}: {why}"))
    }
}

/// An `.npy` entry: magic, version, header dictionary, data.
fn parse_npy(b: &[u8]) -> Result<Array<'_>, String> {
    let (dtype, shape, start) = parse_npy_header(b)?;
    let data = &b[start..];
    let want = data_len(dtype, &shape)?;
    if data.len() != want {
        return Err(format!(
            "shape {shape:?} needs {want} bytes, the entry holds {}",
            data.len()
        ));
    }
    Ok(Array { dtype, shape, data })
}

/// Bytes of the elements of an array of `dtype` and `shape`.
pub(crate) fn data_len(dtype: Dtype, shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
        .ok_or_else(|| "shape too large".to_string())
}

/// The element type, shape and where the data starts of the `.npy` entry that `b`
/// begins (its magic, version and header dictionary; the data need not follow).
pub(crate) fn parse_npy_header(b: &[u8]) -> Result<(Dtype, Vec<usize>, usize), String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not an .npy array".into());
    }
    let (len, start) = match b[6] {
        1 => (u16_at(b, 8).unwrap_or(0), 10),
        2 | 3 => (u32_at(b, 8).unwrap_or(0), 12),
        v => return Err(format!(".npy version {v} is not read")),
    };
    let header = b.get(start..start + len).ok_or("header cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let value_of = |key: &str| -> Result<&str, String> {
        let at = header
            .find(&format!("'{key}':"))
            .ok_or_else(|| format!("header lacks '{key}'"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let descr = value_of("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("bad descr")?;
    let dtype = Dtype::from_descr(descr).ok_or_else(|| format!("dtype {descr} is not read"))?;
    if value_of("fortran_order")?.starts_with("True") {
        return Err("Fortran order is not read".into());
    }
    let shape = value_of("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("bad shape")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<usize>()
                .map_err(|_| format!("bad shape ({inner})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((dtype, shape, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip64_records_are_written_and_read() {
        let (_dir, path) = crate::test_files::temp_file("big.npz");
        // Sizes and offsets from 200 bytes on are "beyond 4 GiB".
        let mut w = NpzWriter::with_limit(&path, 200).unwrap();
        for (name, len) in [("small", 3usize), ("large", 40)] {
            w.array(name, Dtype::F64, &[len], |o| {
                (0..len).try_for_each(|i| o.write_all(&(i as f64).to_le_bytes()))
            })
            .unwrap();
        }
        w.finish(MARK_FOR_TESTS).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let npz = Npz::parse(bytes.clone()).unwrap();
        assert_eq!(npz.array("small").unwrap().f64(2), 2.0);
        let large = npz.array("large").unwrap();
        assert_eq!((large.len(), large.f64(39)), (40, 39.0));
        assert_eq!(npz.comment(), MARK_FOR_TESTS);
        for cut in [bytes.len() - 30, bytes.len() - 60] {
            assert!(Npz::parse(bytes[..cut].to_vec()).is_err());
        }
    }

    const MARK_FOR_TESTS: &str = "zip64 test";

    #[test]
    fn crc_of_the_standard_check_string() {
        let mut c = Crc::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
    }

    #[test]
    fn arrays_round_trip_and_damage_is_named() {
        let (dir, path) = crate::test_files::temp_file("a.npz");
        // A wrong element count is refused.
        let mut w = NpzWriter::create(&dir.path().join("bad.npz")).unwrap();
        assert!(w
            .array("bad", Dtype::U8, &[4], |o| o.write_all(&[1]))
            .is_err());
        let mut w = NpzWriter::create(&path).unwrap();
        w.array("x", Dtype::F64, &[2, 3], |o| {
            for v in 0..6 {
                o.write_all(&(v as f64 * 0.5).to_le_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        w.array("n", Dtype::U16, &[3], |o| {
            o.write_all(&[1, 0, 2, 0, 0xff, 0xff])
        })
        .unwrap();
        w.finish("mark").unwrap();
        let bytes_done = std::fs::read(&path).unwrap();
        let npz = Npz::parse(bytes_done.clone()).unwrap();
        assert_eq!(npz.comment(), "mark");
        let x = npz.array("x").unwrap();
        assert_eq!(x.shape, vec![2, 3]);
        assert_eq!(x.f64(5), 2.5);
        let n = npz.array("n").unwrap();
        assert_eq!((n.dtype, n.len(), n.int(2)), (Dtype::U16, 3, 65535));
        assert!(npz.array("y").unwrap_err().contains("no array y"));
        // Truncated, or a flipped data byte: errors, no panic.
        for cut in [1, 30, bytes_done.len() / 2, bytes_done.len() - 1] {
            assert!(Npz::parse(bytes_done[..cut].to_vec()).is_err(), "cut {cut}");
        }
        let mut flipped = bytes_done.clone();
        flipped[200] ^= 1;
        assert!(Npz::parse(flipped).unwrap_err().contains("checksum"));
    }
}
