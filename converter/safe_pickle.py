"""Reading pickles without running them: what the original release's pickles hold (numpy arrays in plain
containers) is admitted, anything else is refused before it is built.

Why not pickle.load: a pickle can import and call any function; a checkpoint from elsewhere is untrusted.
torch.load(weights_only=True) plays this role for .pth files; the original's scale_statistic.pkl is a plain
pickle, so it gets this restricted unpickler.
"""
import io
import pickle
import pickletools
import zipfile


def _latin1_bytes(text, encoding="latin1"):
    """What protocol-2 pickles of numpy arrays call _codecs.encode for: bytes from a latin1 string, nothing else."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers (dict, list, tuple, str, numbers); refuses anything else.

    Numpy arrays come as _reconstruct + ndarray + dtype (protocols 0-4), _frombuffer (protocol 5), and
    protocol 2 spells their bytes as _codecs.encode(text, 'latin1'), admitted in that form only."""

    ALLOWED = {(core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray")
               for name in ("_reconstruct", "scalar")} | {
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only numpy arrays and plain containers)")


def load_arrays(data):
    """Unpickle bytes with ArrayOnlyUnpickler (pickle.UnpicklingError for anything it refuses)."""
    return ArrayOnlyUnpickler(io.BytesIO(data)).load()


def pickled_globals(data):
    """The globals a pickle stream (or a torch zip's data.pkl) would import, found by reading its opcodes
    (pickletools.genops parses, never executes); None when the bytes are not a pickle at all."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not names:
                return None
            data = archive.read(names[0])
    found, strings = [], []
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings = (strings + [argument])[-2:]
            elif opcode.name == "GLOBAL":
                found.append(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
                found.append(".".join(strings))
    except Exception:
        return None
    return found
