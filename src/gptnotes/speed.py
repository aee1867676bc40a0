"""Training faster: ``torch.compile`` from outside the model, and memory kept between steps.

* [`compiled`][gptnotes.speed.compiled] compiles a model's forward pass (and so its backward pass) with
  ``torch.compile`` inside a ``with`` block, as nanoGPT's ``train.py`` does with
  ``model = torch.compile(model)``, and falls back to plain eager execution where no
  compiler is available. The model's code has no hook for it: PyTorch's modules have a slot
  for a compiled call (what ``model.compile()`` fills), and the block fills and empties it.
* [`keep_freed_memory`][gptnotes.speed.keep_freed_memory] keeps the memory a training step frees for the next step
  (glibc), instead of handing it back to the kernel and faulting it in again.

The other speed-ups live where they act: the fused AdamW of
[`make_optimizer`][gptnotes.training.make_optimizer], and data-parallel training in [`gptnotes.distributed`][gptnotes.distributed].
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gptnotes.gpt import GPTLanguageModel

__all__ = ["compiled", "CompileStatus", "keep_freed_memory"]


@dataclass
class CompileStatus:
    """What [`compiled`][gptnotes.speed.compiled] did: whether the model runs compiled, and if not, why.

    Attributes:
        active: ``True`` while the model runs through the compiled function; ``False`` if
            [`compiled`][gptnotes.speed.compiled] fell back to eager execution.
        reason: Why it fell back (empty while ``active``).

    Examples:
        >>> from gptnotes import CompileStatus
        >>> CompileStatus(active=False, reason="no C++ compiler").active
        False
    """

    active: bool = False
    reason: str = ""


def _compile_problem(device: torch.device) -> str:
    """Why ``torch.compile`` cannot work here ("" if nothing is known to stop it)."""
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return "torch.compile does not support this Python version"
        if device.type == "cpu":  # Inductor writes C++ for the CPU and needs a compiler for it
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
        elif device.type == "cuda":
            from torch.utils._triton import has_triton

            if not has_triton():
                return "torch.compile needs Triton for CUDA, and it is not installed"
    except Exception as err:  # InvalidCxxCompiler, or a torch without these internals
        first_line = (str(err).strip().splitlines() or [""])[0]
        return f"no working C++ compiler for torch.compile ({type(err).__name__}: {first_line})"
    return ""


class _CompiledCall:
    """What a model's ``__call__`` runs inside [`compiled`][gptnotes.speed.compiled]: the compiled call while
    gradients are on, the eager call otherwise or once compiling failed.

    It fills the slot that ``torch.nn.Module.compile()`` fills (``_compiled_call_impl``, which
    ``Module.__call__`` runs instead of the eager call when set). A copy of the model
    (``copy.deepcopy``, ``to_fused``) does not carry the slot along, so it runs eagerly.
    """

    def __init__(self, status: CompileStatus, model: GPTLanguageModel) -> None:
        self.status = status
        self.model = weakref.ref(model)
        with warnings.catch_warnings():  # importing Inductor trips deprecations inside torch itself
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
            self.fn = torch.compile(model._call_impl, dynamic=False)  # the whole call: forward and hooks
        self.proven = False

    def __call__(self, *args: object, **kwargs: object) -> object:
        model = self.model()
        if not self.status.active or not torch.is_grad_enabled():
            return model._call_impl(*args, **kwargs)  # eager: evaluation, generation, a fallback
        if self.proven:
            return self.fn(*args, **kwargs)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
                out = self.fn(*args, **kwargs)  # the first call compiles
        except Exception as err:  # e.g. the compiler fails on this machine
            first_line = (str(err).strip().splitlines() or [""])[0]
            self.status.active = False
            self.status.reason = f"torch.compile failed ({type(err).__name__}: {first_line[:200]})"
            warnings.warn(f"{self.status.reason}; the model runs without it", RuntimeWarning, stacklevel=4)
            return model._call_impl(*args, **kwargs)  # a genuine error in the model raises again here
        self.proven = True
        return out


@contextlib.contextmanager
def compiled(model: GPTLanguageModel) -> Iterator[CompileStatus]:
    """Run ``model`` through ``torch.compile`` inside a ``with`` block.

    Inside the block, ``model(idx, targets)`` calls a ``torch.compile``-d version of the
    model's call, made from outside the model like nanoGPT's ``model = torch.compile(model)``:
    Dynamo captures the whole forward pass (embeddings, every transformer block, the final
    layer norm, the output layer and the loss) as one graph, and Inductor fuses the small
    element-wise operations into generated C++ loops and calls the matrix multiplications
    directly; the forward and the backward pass then run without a trip through Python per
    operation. The first training step compiles (tens of seconds on a small CPU, more with
    more layers); the steps after it are faster where per-operation overhead dominates (small
    models) and about as fast where matrix products do. Evaluation and generation (no
    gradients) stay eager. The model itself is not changed: after the block it runs eagerly
    again, its ``state_dict`` never changes, and a copy made inside the block runs eagerly.

    The forward's input checks stay out of the graph (they ask
    ``torch.compiler.is_compiling()``): [`gptnotes.train`][gptnotes.training.train] checked every token id of
    the data before the first step, and Dynamo's guards check the shapes and types the graph
    was compiled for (another shape compiles again).

    Where ``torch.compile`` cannot work (no C++ compiler for Inductor on a CPU, no Triton for
    CUDA, an unsupported Python) or its first compilation fails, a `RuntimeWarning`
    says why and the model runs eagerly: the same results, only slower.

    Args:
        model: A [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel], either attention path.

    Yields:
        A [`CompileStatus`][gptnotes.speed.CompileStatus]: ``active`` tells whether the model runs compiled.

    Raises:
        TypeError: If ``model`` is not a [`GPTLanguageModel`][gptnotes.gpt.GPTLanguageModel].

    Examples:
        >>> import torch
        >>> from gptnotes import GPTLanguageModel, compiled
        >>> _ = torch.manual_seed(0)
        >>> model = GPTLanguageModel(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1)
        >>> with compiled(model) as status, torch.no_grad():
        ...     logits, _ = model(torch.tensor([[0, 1, 2]]))   # no gradients: eager, nothing to compile
        >>> status.active, tuple(logits.shape)                 # active: a C++ compiler was found
        (True, (1, 3, 5))
    """
    if not isinstance(model, GPTLanguageModel):
        raise TypeError(f"model must be a GPTLanguageModel, got {type(model).__name__}")
    device = next(model.parameters()).device
    problem = _compile_problem(device)
    status = CompileStatus(active=not problem, reason=problem)
    if problem:
        warnings.warn(f"{problem}; the model runs without torch.compile", RuntimeWarning, stacklevel=3)
    previous = model._compiled_call_impl
    with contextlib.ExitStack() as stack:
        if status.active:
            stack.enter_context(_recompute_cheap_masks())
            model._compiled_call_impl = _CompiledCall(status, model)
        try:
            yield status
        finally:
            model._compiled_call_impl = previous


def _recompute_cheap_masks() -> contextlib.AbstractContextManager:
    """Let the compiled backward recompute ReLU's mask instead of saving it in the forward pass.

    Measured on a CPU with PyTorch 2.13: by default the forward graph stores the boolean mask
    ``relu(h) <= 0`` for the backward pass, and Inductor's C++ for a boolean store is a scalar
    byte loop, so the two kernels that write and read it took about a fifth of the compiled
    step, which ended slower than eager. Recomputing the mask from the saved ReLU output is one
    comparison inside a fused backward loop.
    """
    try:
        import torch._functorch.config as functorch_config

        return functorch_config.patch(aggressive_recomputation=True)
    except (ImportError, AttributeError):  # a PyTorch without this setting
        return contextlib.nullcontext()


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Keep the memory freed during training in the process, instead of returning it to the OS.

    glibc's ``malloc`` gives each allocation above 32 MB (the lecture model's activations are
    up to 100 MB) its own ``mmap`` and returns it with ``munmap`` when it is freed, so every
    training step asks the kernel for fresh pages and the kernel zeroes each 4 KB page on
    first touch: about a twentieth of the lecture model's step went to page faults. Inside
    this block every allocation comes from the heap and freed memory stays there for the next
    step. On exit the settings go back and the kept memory is released (``malloc_trim``).
    Elsewhere than glibc (macOS, musl) it does nothing. [`gptnotes.train`][gptnotes.training.train] trains inside it.

    Yields:
        Whether it acted (``True`` with glibc).

    Examples:
        >>> from gptnotes.speed import keep_freed_memory
        >>> with keep_freed_memory() as acted:
        ...     total = sum(range(10))
        >>> total
        45
    """
    libc = None
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None)
        if libc is not None and not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
            libc = None
    if libc is None:
        yield False
        return
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    libc.mallopt(M_MMAP_MAX, 0)  # no mmap: all allocations from the heap
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # never shrink the heap
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, 65536)  # glibc's defaults
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)
