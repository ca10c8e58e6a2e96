//! Storages: the dtypes a checkpoint may use, turning raw little-endian bytes
//! into tensors, and checking tensor views against their storage.

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

/// Maximum number of dimensions of a tensor view; checkpoints use far fewer.
pub(crate) const MAX_DIMS: usize = 64;

/// A storage that the pickle refers to by key, as a persistent id.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StorageRef {
    pub key: String,
    pub kind: Kind,
    /// Number of elements of `kind` in the whole storage.
    pub numel: i64,
    /// Legacy-format storage view: element offset and length inside `key`.
    pub view: Option<(i64, i64)>,
}

/// A tensor to build from a storage with `as_strided`.
#[derive(Clone, Debug)]
pub(crate) struct TensorSpec {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// The `torch.*Storage` classes and the dtypes they store.
const STORAGE_CLASSES: [(&str, Kind); 10] = [
    ("FloatStorage", Kind::Float),
    ("DoubleStorage", Kind::Double),
    ("HalfStorage", Kind::Half),
    ("BFloat16Storage", Kind::BFloat16),
    ("LongStorage", Kind::Int64),
    ("IntStorage", Kind::Int),
    ("ShortStorage", Kind::Int16),
    ("CharStorage", Kind::Int8),
    ("ByteStorage", Kind::Uint8),
    ("BoolStorage", Kind::Bool),
];

/// Returns the dtype of a `torch.<name>` storage class.
pub(crate) fn kind_of_storage_class(name: &str) -> Option<Kind> {
    STORAGE_CLASSES
        .iter()
        .find(|(class, _)| *class == name)
        .map(|(_, kind)| *kind)
}

/// Returns the `torch.<name>` storage class that stores `kind`.
pub(crate) fn storage_class_of_kind(kind: Kind) -> Option<&'static str> {
    STORAGE_CLASSES
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(class, _)| *class)
}

/// Returns the number of bytes that `numel` elements of `kind` take, or an
/// error when that overflows.
pub(crate) fn byte_len(kind: Kind, numel: i64) -> Result<usize> {
    let numel = usize::try_from(numel)
        .with_context(|| format!("invalid element count {numel}: expected a count >= 0"))?;
    numel
        .checked_mul(kind.elt_size_in_bytes())
        .with_context(|| format!("{numel} elements of {kind:?} overflow the address space"))
}

/// Copies little-endian `bytes` into a new 1-D CPU tensor of `kind`.
///
/// `bytes` must hold a whole number of elements; bool bytes must be 0 or 1.
pub(crate) fn tensor_from_bytes(bytes: &[u8], kind: Kind) -> Result<Tensor> {
    let element_size = kind.elt_size_in_bytes();
    if bytes.len() % element_size != 0 {
        bail!(
            "storage of {} bytes is not a whole number of {kind:?} elements ({element_size} bytes each)",
            bytes.len()
        );
    }
    if kind == Kind::Bool {
        if let Some(byte) = bytes.iter().find(|&&b| b > 1) {
            bail!("bool storage contains the byte {byte:#04x}: expected 0 or 1");
        }
    }
    let numel = i64::try_from(bytes.len() / element_size)?;
    // `f_from_data_size` copies numel * element_size bytes, which the checks
    // above keep inside `bytes`.
    Tensor::f_from_data_size(bytes, &[numel], kind)
        .with_context(|| format!("creating a {kind:?} tensor of {numel} elements"))
}

/// Largest ratio of a view's element count to its storage's: broadcast
/// views saved from `expand` stay well under it.
const MAX_VIEW_EXPANSION: i64 = 1024;

/// Checks that a view with `size`, `stride` and `offset` stays inside a
/// storage of `storage_numel` elements, without overflow.
pub(crate) fn check_view(
    storage_numel: i64,
    offset: i64,
    size: &[i64],
    stride: &[i64],
) -> Result<()> {
    if size.len() != stride.len() {
        bail!("tensor size {size:?} and stride {stride:?} have different lengths");
    }
    if size.len() > MAX_DIMS {
        bail!(
            "tensor has {} dimensions: at most {MAX_DIMS} are supported",
            size.len()
        );
    }
    if offset < 0 {
        bail!("invalid storage offset {offset}: expected >= 0");
    }
    if let Some(s) = size.iter().find(|&&s| s < 0) {
        bail!("invalid tensor size {size:?}: dimension {s} is negative");
    }
    if let Some(s) = stride.iter().find(|&&s| s < 0) {
        bail!("invalid tensor stride {stride:?}: stride {s} is negative");
    }
    let numel = size
        .iter()
        .try_fold(1i64, |acc, &s| acc.checked_mul(s))
        .with_context(|| format!("tensor size {size:?} overflows 64 bits"))?;
    if size.contains(&0) {
        return Ok(());
    }
    // A view with zero or overlapping strides can claim far more elements
    // than its storage holds, and copying it out (to convert or save it)
    // would allocate all of them.
    if numel > storage_numel.max(1).saturating_mul(MAX_VIEW_EXPANSION) {
        bail!(
            "tensor view of size {size:?} (stride {stride:?}) has {numel} elements, more than \
             {MAX_VIEW_EXPANSION} times its storage of {storage_numel}; such an overlapping \
             view is not a plausible checkpoint tensor"
        );
    }
    let last = size
        .iter()
        .zip(stride)
        .try_fold(offset, |acc, (&s, &st)| {
            (s - 1).checked_mul(st)?.checked_add(acc)
        })
        .with_context(|| {
            format!(
                "tensor view (offset {offset}, size {size:?}, stride {stride:?}) overflows 64 bits"
            )
        })?;
    if last >= storage_numel {
        bail!(
            "tensor view (offset {offset}, size {size:?}, stride {stride:?}) reaches element {last}, \
             past the end of its storage of {storage_numel} elements"
        );
    }
    Ok(())
}

/// Builds the tensor that `spec` describes from its whole storage `root`, a
/// 1-D tensor of `spec.storage.numel` elements. The result shares `root`'s
/// memory.
pub(crate) fn view_tensor(root: &Tensor, spec: &TensorSpec) -> Result<Tensor> {
    let (base, len) = spec.storage.view.unwrap_or((0, spec.storage.numel));
    check_view(len, spec.offset, &spec.size, &spec.stride)?;
    let offset = base
        .checked_add(spec.offset)
        .context("storage offset overflows 64 bits")?;
    root.f_as_strided(spec.size.as_slice(), spec.stride.as_slice(), offset)
        .with_context(|| {
            format!(
                "building a view (offset {offset}, size {:?}, stride {:?}) of storage '{}'",
                spec.size, spec.stride, spec.storage.key
            )
        })
}

/// Returns the 1-D tensor for a bare storage object (one not wrapped in a
/// tensor), taking a legacy view into account.
pub(crate) fn storage_tensor(root: &Tensor, storage: &StorageRef) -> Result<Tensor> {
    match storage.view {
        None => Ok(root.shallow_clone()),
        Some((offset, len)) => root.f_narrow(0, offset, len).with_context(|| {
            format!(
                "taking elements {offset}..+{len} of storage '{}'",
                storage.key
            )
        }),
    }
}

/// Copies a tensor's elements in row-major order as raw bytes, through a
/// contiguous CPU copy for CUDA and non-contiguous tensors.
///
/// NOTE: the bytes are in host order, so the files written are
/// little-endian only on little-endian hosts.
pub(crate) fn tensor_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let kind = tensor.f_kind()?;
    let numel = tensor.numel();
    let len = numel
        .checked_mul(kind.elt_size_in_bytes())
        .with_context(|| format!("tensor of {numel} {kind:?} elements is too large"))?;
    let mut buffer = vec![0u8; len];
    tensor
        .f_copy_data_u8(&mut buffer, numel)
        .with_context(|| format!("copying a {kind:?} tensor of {numel} elements"))?;
    Ok(buffer)
}

#[cfg(test)]
mod view_tests {
    use super::check_view;

    #[test]
    fn zero_stride_view_of_huge_size_is_rejected() {
        let error = check_view(7, 0, &[1 << 40], &[0]).unwrap_err();
        assert!(
            format!("{error}").contains("more than 1024 times its storage of 7"),
            "{error}"
        );
    }

    #[test]
    fn modest_broadcast_view_is_accepted() {
        check_view(8, 0, &[16, 8], &[0, 1]).unwrap();
    }
}
