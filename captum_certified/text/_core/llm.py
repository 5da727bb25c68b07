"""Certified token attributions for a generated target (Captum's LLM attribution, smoothed)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from captum.attr import Attribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_certified._utils.layers import check_layer
from captum_certified.transforms import AttributionTransform, TokenReduce


def _certified_layer_call(
    method: Attribution,
    layer: nn.Module,
    ids: Tensor,
    *,
    transform: AttributionTransform,
    return_certificate: bool,
    **kwargs: Any,
) -> Any:
    """``CertifiedWrapper(method, noise_layer=layer)`` on ``ids``."""
    from captum_certified.attr import CertifiedWrapper

    cw = CertifiedWrapper(method, noise_layer=layer, transform=transform)
    run: Any = cw.attribute
    return run(ids, return_certificate=return_certificate, **kwargs)


def _model_ids(inp: Any, itp: Tensor | None = None) -> Tensor:
    """The token ids of a ``TextTokenInput`` (optionally of a perturbed interpretable tensor)."""
    ids = inp.to_model_input() if itp is None else inp.to_model_input(itp)
    if isinstance(ids, dict):
        ids = ids["input_ids"]
    if not isinstance(ids, Tensor):
        raise TypeError("`inp` must be a captum TextTokenInput (token ids as model input)")
    return ids


def _feature_ablation(method: Attribution) -> bool:
    from captum.attr import LayerFeatureAblation

    return isinstance(method, LayerFeatureAblation)


class TargetLogProb(nn.Module):
    r"""``ids -> log p(target tokens | ids)`` of a causal LM (teacher forcing), per row.

    With ``index`` the log-probability of ``target[index]`` after ``ids`` and
    ``target[:index]`` (Captum's ``LLMGradientAttribution`` per generated token); with
    ``index=None`` the sum over the whole target (its sequence attribution). The target is
    held by the module, so noisy rows repeat only ``ids``.
    """

    def __init__(self, model: nn.Module, target: Tensor, index: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("target", target.reshape(-1).long(), persistent=False)
        self.index = index

    def forward(self, ids: Tensor) -> Tensor:
        target: Tensor = self.get_buffer("target").to(ids.device)
        upto = target.numel() - 1 if self.index is None else self.index
        prefix = target[:upto].unsqueeze(0).expand(ids.shape[0], -1)
        full = torch.cat([ids, prefix], dim=1)
        out = self.model(full)
        logits = out.logits if hasattr(out, "logits") else out
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        start = ids.shape[1] - 1
        if self.index is not None:
            return log_probs[:, -1, target[self.index]].unsqueeze(1)
        steps = log_probs[:, start : start + target.numel()]
        picked = steps.gather(2, target.view(1, -1, 1).expand(ids.shape[0], -1, 1))
        return picked.sum(dim=(1, 2)).unsqueeze(1)


class CertifiedLLMAttribution(Attribution):
    r"""Smoothed (and certified) token attributions of a causal LM's generated target.

    The counterpart of Captum's ``LLMGradientAttribution``: the same inputs
    (``TextTokenInput``), targets (a string, ids, or generated) and result
    (``LLMAttributionResult``), but every attribution is smoothed over Gaussian noise added to
    the embedding layer's output (``docs/certificates.rst``, "Noise at a layer"), and with
    ``return_certificate=True`` each comes with a certificate of its top-K tokens under l2
    perturbations of that output. Per generated token (``per_token=True``, as Captum) or for
    the summed log-probability of the whole target (one map, one certificate).

    Args:
        attr_method (LayerAttribution): A layer method on the LM and its input embedding
                    (``LayerIntegratedGradients(model, model.get_input_embeddings())``,
                    ``LayerGradientXActivation``, ``LayerFeatureAblation``, ...). Layer
                    baselines default to Captum's: every interpretable token replaced by the
                    input's baseline token. ``LayerFeatureAblation`` ablates whole tokens
                    (Captum ``LLMAttribution``'s features), replacing a token's embedding by
                    the baseline token's; each embedding dimension of a token then carries the
                    token's whole effect.
        tokenizer: The LM's tokenizer (``encode``, ``convert_ids_to_tokens``).
        transform (AttributionTransform, optional): Per-sample map; must reduce the layer map
                    to one score per token. Default: ``TokenReduce("sum")`` (Captum's token
                    score, signed); for certificates use e.g.
                    ``Compose(TokenReduce("l2"), TopKBinarize(2))``.

    Examples::

        >>> from captum.attr import LayerIntegratedGradients, TextTokenInput
        >>> llm = CertifiedLLMAttribution(
        ...     LayerIntegratedGradients(lm, lm.get_input_embeddings()), tokenizer)
        >>> res = llm.attribute(TextTokenInput("the movie was", tokenizer), target="good",
        ...                     nt_samples=8, stdevs=0.05, n_steps=8,
        ...                     generator=torch.Generator().manual_seed(0))
        >>> res.token_attr.shape  # one row per generated token, one column per prompt token
        torch.Size([1, 3])
    """

    def __init__(
        self,
        attr_method: LayerAttribution,
        tokenizer: Any,
        *,
        transform: AttributionTransform | None = None,
    ) -> None:
        if not isinstance(attr_method, LayerAttribution):
            raise TypeError(
                "`attr_method` must be a Captum layer method on the model's input embedding "
                f"(e.g. LayerIntegratedGradients), got {type(attr_method).__name__}"
            )
        self.layer = check_layer(getattr(attr_method, "layer", None), "attr_method.layer")
        if not isinstance(attr_method.forward_func, nn.Module):
            raise TypeError("`attr_method` must be built on the language model (an nn.Module)")
        super().__init__(attr_method.forward_func)
        self.attr_method = attr_method
        self.model: nn.Module = attr_method.forward_func
        self.tokenizer = tokenizer
        self.transform = transform if transform is not None else TokenReduce("sum")

    def _baseline_embedding(self, inp: Any) -> Tensor | None:
        """The layer's output for the input's baseline token, ``(1, 1, E)`` (embeddings only)."""
        base = getattr(inp, "baselines", 0)
        if isinstance(base, str):
            base = self.tokenizer.convert_tokens_to_ids(base)
        if not isinstance(self.layer, nn.Embedding) or not isinstance(base, int):
            return None
        with torch.no_grad():
            return self.layer(torch.tensor([[base]], device=self.layer.weight.device))

    def _target_tokens(self, inp: Any, target: Any, gen_args: dict[str, Any] | None) -> Tensor:
        if target is None:
            ids = _model_ids(inp)
            args = dict(gen_args or {"max_new_tokens": 5, "do_sample": False})
            with torch.no_grad():
                out = self.model.generate(ids, **args)  # type: ignore[operator]
            return out[0, ids.shape[1] :]
        if gen_args is not None:
            raise ValueError("`gen_args` must be None when `target` is given")
        if isinstance(target, str):
            return torch.tensor(self.tokenizer.encode(target, add_special_tokens=False))
        if isinstance(target, Tensor):
            return target.reshape(-1)
        raise TypeError(f"`target` must be a str, a Tensor or None, got {type(target).__name__}")

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inp: Any,
        target: str | Tensor | None = None,
        gen_args: dict[str, Any] | None = None,
        *,
        per_token: bool = True,
        return_certificate: bool = False,
        **kwargs: Any,
    ) -> Any:
        r"""Smoothed token attributions of ``inp``'s tokens for ``target``.

        Args:
            inp (TextTokenInput): The prompt (Captum's ``TextTokenInput``).
            target (str, Tensor or None, optional): The target text or ids; None generates
                        it with ``gen_args``. Default: None
            gen_args (dict, optional): Arguments of ``model.generate`` (target None only).
                        Default: None
            per_token (bool, optional): One map per generated token (True) or one map for the
                        summed log-probability of the target. Default: True
            return_certificate (bool, optional): Also return one certificate per map.
                        Default: False
            **kwargs: Arguments of :meth:`CertifiedWrapper.attribute
                        <captum_certified.attr.CertifiedWrapper.attribute>` (``nt_samples``,
                        ``stdevs``, ``generator``, ``alpha``, ...) and of the layer method
                        (``n_steps``, ``baselines``, ...).

        Returns:
            **result** (``LLMAttributionResult``): ``token_attr`` of shape
            ``(generated tokens, prompt tokens)`` (one row for ``per_token=False``) and
            ``seq_attr`` their sum; then a list of certificates (one per row) if asked. A
            row's certificate is about the top-K of every input position of its forward: the
            prompt and, for later generated tokens, the target prefix before it.
        """
        from captum.attr import LLMAttributionResult

        target_tokens = self._target_tokens(inp, target, gen_args)
        if target_tokens.numel() == 0:
            raise ValueError("`target` has no tokens")
        ids = _model_ids(inp)
        prompt_len = ids.shape[1]
        if "baselines" not in kwargs and not _feature_ablation(self.attr_method):
            # Captum's convention: every interpretable token replaced by the input's baseline
            # token, skipped tokens kept
            kwargs["baselines"] = _model_ids(inp, torch.zeros_like(inp.to_tensor()))
        indices: list[int | None] = list(range(target_tokens.numel())) if per_token else [None]
        rows, certs = [], []
        ablation = _feature_ablation(self.attr_method)
        for index in indices:
            method = copy.copy(self.attr_method)
            method.forward_func = TargetLogProb(self.model, target_tokens, index)
            call_kwargs = dict(kwargs)
            if ablation:
                length = prompt_len + (target_tokens.numel() - 1 if index is None else index)
                call_kwargs.setdefault("layer_mask", torch.arange(length).view(1, length, 1))
                call_kwargs.setdefault("layer_baselines", self._baseline_embedding(inp))
            out = _certified_layer_call(
                method,
                self.layer,
                ids,
                transform=self.transform,
                return_certificate=return_certificate,
                target=0,
                **call_kwargs,
            )
            attr, cert = out if return_certificate else (out, None)
            if attr.dim() != 2:
                raise ValueError(
                    "`transform` must reduce the layer map to one score per token (e.g. "
                    f"TokenReduce), got attributions of shape {tuple(attr.shape)}"
                )
            rows.append(attr[:, :prompt_len].detach())
            certs.append(cert)
        token_attr = torch.cat(rows, dim=0)
        itp_mask = getattr(inp, "itp_mask", None)
        if itp_mask is not None:
            token_attr = token_attr[:, itp_mask.reshape(-1).to(token_attr.device)]
        names = [str(t) for t in self.tokenizer.convert_ids_to_tokens(target_tokens.tolist())]
        output_tokens = names if per_token else [" ".join(names)]
        result = LLMAttributionResult(
            seq_attr=token_attr.sum(0),
            token_attr=token_attr,
            input_tokens=list(inp.values),
            output_tokens=output_tokens,
        )
        return (result, certs) if return_certificate else result
