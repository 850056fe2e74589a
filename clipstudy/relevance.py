"""Relevance maps: where a CLIP checkpoint looks in a photo for a prompt.

ViT checkpoints get Chefer et al.'s gradient-weighted attention relevance (the
rule of Transformer-MM-Explainability's CLIP notebook), ResNet checkpoints get
Grad-CAM on the last convolutional stage; both use the zero-shot logit of the
(image, prompt) pair as the target, and the text tower always gets Chefer's rule.
"""

import logging
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import nn

log = logging.getLogger(__name__)


class UnsupportedModelError(ValueError):
    """A model, tower or attention module that the relevance methods do not know."""


@dataclass
class Explanation:
    """Relevance of one image for P prompts, as computed on the model input."""

    method: str
    image_relevance: torch.Tensor  # (P, grid_h, grid_w), float32, CPU
    text_relevance: torch.Tensor  # (P, context, context), float32, CPU
    logits: torch.Tensor  # (P,) zero-shot logit of each (image, prompt) pair
    start_layer: int | None  # resolved first block of the image tower; None: no ViT
    start_layer_text: int  # resolved first block of the text tower

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.image_relevance.shape[1:])


@dataclass
class RelevanceMap(Explanation):
    """An explanation together with its prompts, tokens and the photo geometry."""

    prompts: list[str] = field(default_factory=list)
    tokens: np.ndarray | None = None  # (P, context) token ids
    token_text: list[list[str]] = field(default_factory=list)  # up to end of text
    eot: np.ndarray | None = None  # (P,) index of the end-of-text token
    input_size: tuple[int, int] = (0, 0)  # model input (height, width)
    photo_size: tuple[int, int] = (0, 0)  # original photo (width, height)
    crop_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def photo_maps(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """The image maps sampled on the original photo (NaN outside the crop)."""
        return to_photo(self.image_relevance, self.crop_box, self.photo_size, size)

    def token_scores(self) -> list[np.ndarray]:
        """Per prompt: end-of-text row over the prompt's tokens, summing to one."""
        return token_scores(self.text_relevance, self.eot)


# towers and blocks


def vision_method(model: nn.Module) -> str:
    """The relevance method for the model's image tower; raise if unsupported."""
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    visual = getattr(model, "visual", None)
    if isinstance(visual, VisionTransformer):
        if getattr(visual, "attn_pool", None) is not None or visual.pool_type != "tok":
            raise UnsupportedModelError(
                f"{type(visual).__name__} pools with {visual.pool_type!r} / an "
                "attentional pooler; Chefer relevance needs the class token "
                "(pool_type 'tok'); use a CLIP ViT checkpoint"
            )
        return "chefer"
    if isinstance(visual, ModifiedResNet):
        return "gradcam"
    raise UnsupportedModelError(
        f"no relevance method for image tower {type(visual).__name__}; supported "
        "are open_clip VisionTransformer (Chefer) and ModifiedResNet (Grad-CAM)"
    )


CUSTOM_BLOCK_KEYS = (
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
)


def method_for_config(model_name: str) -> str:
    """The relevance method for an open_clip model name, judged from its config.

    Lets a workflow reject an unsupported checkpoint before any job runs.
    """
    import open_clip

    config = open_clip.get_model_config(model_name)
    if config is None:
        raise UnsupportedModelError(
            f"open_clip has no config for {model_name!r}; see open_clip.list_models()"
        )
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    problems = []
    if vision.get("timm_model_name"):
        problems.append(f"timm image tower {vision['timm_model_name']}")
    if vision.get("attentional_pool") or vision.get("pool_type", "tok") != "tok":
        problems.append("image tower without class-token pooling")
    if text.get("hf_model_name"):
        problems.append(f"Hugging Face text tower {text['hf_model_name']}")
    if text.get("embed_cls"):
        problems.append("text tower with a class token")
    for tower, cfg in (("image", vision), ("text", text)):
        custom = [key for key in CUSTOM_BLOCK_KEYS if cfg.get(key)]
        if custom or cfg.get("block_type") == "custom":
            problems.append(
                f"{tower} tower with custom attention ({', '.join(custom)})"
            )
    if problems:
        raise UnsupportedModelError(
            f"no relevance method for {model_name}: {'; '.join(problems)}; "
            "supported are CLIP ViTs (Chefer) and ModifiedResNets (Grad-CAM)"
        )
    return "gradcam" if isinstance(vision.get("layers"), list | tuple) else "chefer"


def _text_tower(model: nn.Module) -> tuple[nn.Module, str, int | None]:
    """(text transformer, pool type, eos id) of a CLIP or CustomTextCLIP."""
    from open_clip.transformer import TextTransformer

    if hasattr(model, "token_embedding") and hasattr(model, "transformer"):
        return model.transformer, model.text_pool_type, model.text_eos_id
    text = getattr(model, "text", None)
    if isinstance(text, TextTransformer) and text.cls_emb is None:
        return text.transformer, text.pool_type, text.eos_id
    raise UnsupportedModelError(
        f"no relevance method for the text tower of {type(model).__name__}; "
        "supported is open_clip's causal TextTransformer without a class token"
    )


def eot_index(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Index of the token the text tower pools (the end-of-text token) per prompt."""
    _, pool_type, eos_id = _text_tower(model)
    if pool_type == "argmax":
        return tokens.argmax(dim=-1)
    if pool_type == "eos":
        return (tokens == eos_id).int().argmax(dim=-1)
    if pool_type == "last":
        return torch.full(tokens.shape[:1], tokens.shape[1] - 1, dtype=torch.long)
    raise UnsupportedModelError(
        f"text pool type {pool_type!r} has no end-of-text token; supported are "
        "argmax, eos and last"
    )


def grid_size(model: nn.Module) -> tuple[int, int]:
    """Side lengths of the relevance grid: ViT patches, or ResNet's last stage."""
    visual = model.visual
    if vision_method(model) == "chefer":
        return tuple(visual.grid_size)
    side = visual.image_size
    height, width = (side, side) if isinstance(side, int) else side
    return height // 32, width // 32


def input_size(model: nn.Module) -> tuple[int, int]:
    """(height, width) of the image tower's input."""
    side = model.visual.image_size
    return (side, side) if isinstance(side, int) else tuple(side)


def resolve_start_layer(start_layer: int, depth: int, tower: str = "image") -> int:
    """Map a start block (negative counts from the end; -1 = last) to an index."""
    if not -depth <= start_layer < depth:
        raise ValueError(
            f"start_layer {start_layer} is outside the {tower} tower's {depth} "
            f"blocks; use -1 (last block only), 0 (every block) or up to {depth - 1}"
        )
    return start_layer % depth


# capturing attention probabilities


def _check_attention(block: nn.Module, index: int) -> nn.MultiheadAttention:
    from open_clip.transformer import ResidualAttentionBlock

    attn = getattr(block, "attn", None)
    known = (
        isinstance(block, ResidualAttentionBlock)
        and type(attn) is nn.MultiheadAttention
        and attn._qkv_same_embed_dim
        and attn.bias_k is None
        and not attn.add_zero_attn
    )
    if not known:
        raise UnsupportedModelError(
            f"block {index} is {type(block).__name__} with attention "
            f"{type(attn).__name__}; relevance can only capture the self-attention "
            "of open_clip's ResidualAttentionBlock (torch nn.MultiheadAttention "
            "with a packed in_proj); this open_clip version or model config is "
            "not supported"
        )
    return attn


def _explicit_attention(
    attn: nn.MultiheadAttention, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """Recompute self-attention from the module's weights; return (output, probs)."""
    names = ("query", "key", "value")
    given = dict(zip(names, args)) | {n: kwargs[n] for n in names if n in kwargs}
    query = given["query"]
    if given.get("key") is not query or given.get("value") is not query:
        raise UnsupportedModelError(
            "relevance needs self-attention (query = key = value); this block "
            "attends to another sequence"
        )
    if kwargs.get("key_padding_mask") is not None:
        raise UnsupportedModelError("key_padding_mask is not supported in relevance")

    x = query if attn.batch_first else query.transpose(0, 1)
    batch, length, width = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, length, heads, -1).transpose(1, 2) for t in (q, k, v))

    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    mask = kwargs.get("attn_mask")
    if mask is not None:
        if mask.dtype == torch.bool:
            mask = torch.zeros_like(mask, dtype=scores.dtype).masked_fill(
                mask, float("-inf")
            )
        if mask.dim() == 3:
            mask = mask.reshape(batch, heads, length, length)
        scores = scores + mask.to(scores.dtype)
    probs = scores.softmax(dim=-1)

    out = (probs @ v).transpose(1, 2).reshape(batch, length, width)
    out = F.linear(out, attn.out_proj.weight, attn.out_proj.bias)
    return (out if attn.batch_first else out.transpose(0, 1)), probs


@contextmanager
def record_attention(blocks: Sequence[nn.Module]):
    """Record each block's attention probabilities (B, heads, N, N) in a dict.

    The self-attention of every block is recomputed from its in_proj weights in
    a forward hook, so the probabilities are part of the autograd graph and
    their gradients can be taken. Hooks are removed on exit.
    """
    attentions = [_check_attention(block, i) for i, block in enumerate(blocks)]
    probs: dict[int, torch.Tensor] = {}
    handles = []

    def make_hook(index: int) -> Callable:
        def hook(module, args, kwargs, output):
            out, p = _explicit_attention(module, args, kwargs)
            if not p.requires_grad:
                p.requires_grad_(True)
            probs[index] = p
            return out, None

        return hook

    try:
        for index, attn in enumerate(attentions):
            handles.append(
                attn.register_forward_hook(make_hook(index), with_kwargs=True)
            )
        yield probs
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def record_output(module: nn.Module):
    """Record a module's output tensor (made differentiable) in a one-item list."""
    outputs: list[torch.Tensor] = []

    def hook(module, args, output):
        if not output.requires_grad:
            output.requires_grad_(True)
        outputs.append(output)

    handle = module.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


# relevance rules


def matched_logits(
    model: nn.Module, images: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """Zero-shot logit of image i with prompt i, for i in range(P)."""
    image_features = model.encode_image(images)
    if isinstance(image_features, tuple):
        image_features = image_features[0]
    text_features = model.encode_text(tokens)
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    return model.logit_scale.exp() * (image_features * text_features).sum(dim=-1)


def accumulate_relevance(
    probs: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]
) -> torch.Tensor:
    """R = I, then R += mean_heads((dA * A)^+) @ R over the given blocks, in order."""
    batch, _, tokens, _ = probs[0].shape
    eye = torch.eye(tokens, dtype=torch.float32, device=probs[0].device)
    relevance = eye.expand(batch, tokens, tokens).clone()
    for attention, grad in zip(probs, grads):
        cam = (grad.float() * attention.float()).clamp(min=0).mean(dim=1)
        relevance = relevance + torch.bmm(cam, relevance)
    return relevance


def _prepare(
    model: nn.Module, image: torch.Tensor, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if model.training:
        raise ValueError("relevance needs the model in eval mode; call model.eval()")
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(
            f"expected one preprocessed image (1, 3, H, W), got {tuple(image.shape)}"
        )
    if tokens.dim() != 2 or tokens.shape[0] == 0:
        raise ValueError(f"expected tokens (P, context), got {tuple(tokens.shape)}")
    expected = input_size(model)
    if tuple(image.shape[-2:]) != expected:
        raise ValueError(
            f"image is {tuple(image.shape[-2:])} but the model takes {expected}; "
            "pass it through the checkpoint's preprocess"
        )
    parameter = next(model.parameters())
    images = image.to(parameter.device, parameter.dtype).expand(len(tokens), -1, -1, -1)
    return images.contiguous(), tokens.to(parameter.device)


def explain(
    model: nn.Module,
    image: torch.Tensor,
    tokens: torch.Tensor,
    start_layer: int = -1,
    start_layer_text: int | None = None,
) -> Explanation:
    """Relevance of one preprocessed image for P tokenised prompts in one pass.

    The image is repeated once per prompt and the target is the sum of the
    matched logits, so each copy's gradients come from its own prompt only.
    `start_layer_text` defaults to `start_layer`.
    """
    method = vision_method(model)
    text_blocks = _text_tower(model)[0].resblocks
    first_image = None
    if method == "chefer":
        image_blocks = model.visual.transformer.resblocks
        first_image = resolve_start_layer(start_layer, len(image_blocks))
    if start_layer_text is None:
        if start_layer >= len(text_blocks):
            raise ValueError(
                f"start_layer {start_layer} is beyond the text tower's "
                f"{len(text_blocks)} blocks; give start_layer_text explicitly"
            )
        start_layer_text = start_layer
    first_text = resolve_start_layer(start_layer_text, len(text_blocks), "text")

    with ExitStack() as stack, torch.inference_mode(False), torch.enable_grad():
        images, tokens = _prepare(model, image.clone(), tokens.clone())
        text_probs = stack.enter_context(record_attention(text_blocks))
        if method == "chefer":
            image_probs = stack.enter_context(record_attention(image_blocks))
        else:
            activations = stack.enter_context(record_output(model.visual.layer4))
        logits = matched_logits(model, images, tokens)

        text_inputs = [text_probs[i] for i in range(first_text, len(text_blocks))]
        if method == "chefer":
            image_inputs = [
                image_probs[i] for i in range(first_image, len(image_blocks))
            ]
        else:
            image_inputs = [activations[-1]]
        grads = torch.autograd.grad(logits.sum(), image_inputs + text_inputs)

    image_grads, text_grads = grads[: len(image_inputs)], grads[len(image_inputs) :]
    text_relevance = accumulate_relevance(text_inputs, text_grads)
    if method == "chefer":
        relevance = accumulate_relevance(image_inputs, image_grads)[:, 0, 1:]
        image_map = relevance.reshape(len(tokens), *model.visual.grid_size)
    else:
        image_map = grad_cam_map(image_inputs[0], image_grads[0])
    return Explanation(
        method=method,
        image_relevance=image_map.detach().float().cpu(),
        text_relevance=text_relevance.detach().float().cpu(),
        logits=logits.detach().float().cpu(),
        start_layer=first_image,
        start_layer_text=first_text,
    )


def grad_cam_map(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM: ReLU of the channels weighted by their spatially averaged gradient."""
    weights = grads.float().mean(dim=(2, 3), keepdim=True)
    return (weights * activations.float()).sum(dim=1).clamp(min=0)


def chefer(
    model: nn.Module,
    image: torch.Tensor,
    tokens: torch.Tensor,
    start_layer: int = -1,
    start_layer_text: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chefer relevance of a ViT CLIP: (image (P, grid*grid), text (P, ctx, ctx)).

    The image map is the class-token row of R over the patches, the text map
    the full R matrix (its end-of-text row is what gets displayed).
    """
    if vision_method(model) != "chefer":
        raise UnsupportedModelError(
            f"chefer() needs a ViT image tower, not {type(model.visual).__name__}; "
            "use grad_cam() or relevance_map()"
        )
    result = explain(model, image, tokens, start_layer, start_layer_text)
    return result.image_relevance.flatten(1), result.text_relevance


def grad_cam(
    model: nn.Module,
    image: torch.Tensor,
    tokens: torch.Tensor,
    start_layer_text: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of a ResNet CLIP's last stage: (image (P, h*w), text (P, ctx, ctx))."""
    if vision_method(model) != "gradcam":
        raise UnsupportedModelError(
            f"grad_cam() needs a ModifiedResNet image tower, not "
            f"{type(model.visual).__name__}; use chefer() or relevance_map()"
        )
    result = explain(model, image, tokens, start_layer_text=start_layer_text)
    return result.image_relevance.flatten(1), result.text_relevance


# geometry: grid, model input, original photo


def to_grid(image_relevance: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Reshape (P, h*w) patch relevance to (P, h, w)."""
    if image_relevance.shape[-1] != grid[0] * grid[1]:
        raise ValueError(
            f"{image_relevance.shape[-1]} relevance values do not fill a "
            f"{grid[0]}x{grid[1]} grid"
        )
    return image_relevance.reshape(-1, *grid)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly upsample (P, h, w) grid maps to the model input size (P, H, W)."""
    maps = torch.as_tensor(maps, dtype=torch.float32)
    return F.interpolate(maps[:, None], size=size, mode="bilinear")[:, 0]


def _find_transforms(preprocess) -> tuple[object, object | None]:
    from torchvision import transforms as T

    steps = getattr(preprocess, "transforms", [])
    resize = next((t for t in steps if isinstance(t, T.Resize)), None)
    crop = next((t for t in steps if isinstance(t, T.CenterCrop)), None)
    others = [
        t for t in steps if type(t).__name__ in ("ResizeKeepRatio", "CenterCropOrPad")
    ]
    if resize is None or others:
        raise UnsupportedModelError(
            f"cannot invert preprocess {preprocess}; supported is open_clip's "
            "Resize (shortest side or squash) followed by an optional CenterCrop"
        )
    return resize, crop


def crop_box(preprocess, photo_size: tuple[int, int]) -> tuple[float, ...]:
    """Box (x0, y0, x1, y1) of the photo, in its pixels, that the model input shows.

    Inverts open_clip's eval transform: resize (shortest side to S, or squash to
    S x S), then centre crop to the model input.
    """
    width, height = photo_size
    resize, crop = _find_transforms(preprocess)
    size = resize.size
    if isinstance(size, int) or len(size) == 1:
        side = size if isinstance(size, int) else size[0]
        short, long = sorted((width, height))
        new_short, new_long = side, int(side * long / short)
        new_w, new_h = (
            (new_short, new_long) if width <= height else (new_long, new_short)
        )
    else:
        new_h, new_w = size
    crop_h, crop_w = (new_h, new_w) if crop is None else crop.size
    if crop_h > new_h or crop_w > new_w:
        raise UnsupportedModelError("centre crops larger than the resized photo")
    top = int(round((new_h - crop_h) / 2.0))
    left = int(round((new_w - crop_w) / 2.0))
    sx, sy = width / new_w, height / new_h
    return (left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy)


def to_photo(
    maps: torch.Tensor | np.ndarray,
    box: Sequence[float],
    photo_size: tuple[int, int],
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Sample (P, h, w) grid maps at the photo's pixels; NaN outside the crop.

    Equals bilinear upsampling to the crop followed by the inverse resize. `size`
    (width, height) samples a downscaled photo instead of every pixel.
    """
    maps = torch.as_tensor(np.asarray(maps), dtype=torch.float32)
    width, height = photo_size
    out_w, out_h = size or photo_size
    x0, y0, x1, y1 = box
    xs = (torch.arange(out_w, dtype=torch.float64) + 0.5) * width / out_w
    ys = (torch.arange(out_h, dtype=torch.float64) + 0.5) * height / out_h
    gx = (xs - x0) / (x1 - x0) * 2 - 1
    gy = (ys - y0) / (y1 - y0) * 2 - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).float()
    grid = grid.expand(len(maps), -1, -1, -1)
    sampled = F.grid_sample(
        maps[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )[:, 0].numpy()
    outside = (grid[0, ..., 0].abs() > 1) | (grid[0, ..., 1].abs() > 1)
    sampled[:, outside.numpy()] = np.nan
    return sampled


def minmax(maps: np.ndarray) -> np.ndarray:
    """Scale each map to [0, 1] on its own (a constant map becomes zeros)."""
    maps = np.asarray(maps, dtype=np.float32)
    flat = maps.reshape(len(maps), -1)
    low = np.nanmin(flat, axis=1, keepdims=True)
    span = np.nanmax(flat, axis=1, keepdims=True) - low
    scaled = (flat - low) / np.where(span > 0, span, 1)
    return scaled.reshape(maps.shape)


# text


def token_scores(text_relevance: torch.Tensor, eot: Sequence[int]) -> list[np.ndarray]:
    """Per prompt: the end-of-text row over tokens 1..eot-1, normalised to sum 1."""
    scores = []
    for relevance, end in zip(np.asarray(text_relevance), np.asarray(eot)):
        row = relevance[int(end), 1 : int(end)].astype(np.float64)
        total = row.sum()
        scores.append(row / total if total > 0 else row)
    return scores


def token_strings(tokenizer, ids: Sequence[int]) -> list[str]:
    """Readable text of each token id (start and end markers included)."""
    inner = getattr(tokenizer, "tokenizer", None)
    if hasattr(inner, "convert_ids_to_tokens"):
        return list(inner.convert_ids_to_tokens([int(i) for i in ids]))
    return [tokenizer.decode([int(i)]).strip() for i in ids]


# photos

# skimage.data images whose files ship inside scikit-image (no download needed)
BUNDLED_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)


def load_photo(spec: dict | str | os.PathLike) -> Image.Image:
    """Load an RGB photo from {skimage: name} (a bundled photo) or {path: file}."""
    if isinstance(spec, str | os.PathLike):
        spec = {"path": str(spec)}
    if "skimage" in spec:
        import skimage.data

        name = spec["skimage"]
        if name not in BUNDLED_PHOTOS:
            raise ValueError(
                f"skimage.data.{name} is not a bundled photo; use one of "
                f"{', '.join(BUNDLED_PHOTOS)} or a file path ({{path: file}})"
            )
        array = np.asarray(getattr(skimage.data, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        if array.ndim != 3 or array.dtype != np.uint8:
            raise ValueError(f"skimage.data.{name} is not an 8-bit photo")
        return Image.fromarray(array[..., :3])
    if "path" in spec:
        path = Path(spec["path"])
        if not path.is_file():
            raise FileNotFoundError(f"relevance image {path} does not exist; fix path")
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(
                f"relevance image {path} does not decode: {error}"
            ) from None
    raise ValueError(f"image spec {spec!r} needs a key skimage or path")


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Return the prompts as a list; raise on an empty list or a blank prompt."""
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts given; list at least one prompt")
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt {prompt!r} is empty; give some words")
    return prompts


def load_fetched(
    checkpoint_json: str | os.PathLike,
    device: str = "auto",
    model_configs: Sequence[str | os.PathLike] = (),
):
    """Load the checkpoint fetch_checkpoint recorded: (model, preprocess, tokenizer).

    Fails before loading if the relevance methods do not support the model.
    """
    import json

    from clipstudy import models

    info = json.loads(Path(checkpoint_json).read_text())
    models.register_model_configs(model_configs)
    method = method_for_config(info["model"])
    loaded = models.load_fetched(
        checkpoint_json, models.pick_device(device), model_configs
    )
    log.info("loaded %s (%s) for %s relevance", info["model"], info["path"], method)
    return loaded


def relevance_map(
    model: nn.Module,
    preprocess,
    tokenizer,
    photo: Image.Image,
    prompts: Sequence[str],
    start_layer: int = -1,
    start_layer_text: int | None = None,
) -> RelevanceMap:
    """Relevance of a photo for each prompt, by the method that fits the checkpoint.

    ViT towers get Chefer relevance, ResNet towers Grad-CAM; other towers raise
    UnsupportedModelError before any computation.
    """
    prompts = check_prompts(prompts)
    vision_method(model)
    device = next(model.parameters()).device
    image = preprocess(photo.convert("RGB")).unsqueeze(0).to(device)
    tokens = tokenizer(prompts).to(device)
    result = explain(model, image, tokens, start_layer, start_layer_text)
    eot = eot_index(model, tokens).cpu()
    ids = tokens.cpu().numpy()
    return RelevanceMap(
        **vars(result),
        prompts=prompts,
        tokens=ids,
        token_text=[token_strings(tokenizer, row[: e + 1]) for row, e in zip(ids, eot)],
        eot=eot.numpy(),
        input_size=input_size(model),
        photo_size=photo.size,
        crop_box=crop_box(preprocess, photo.size),
    )
