"""Tutorial 6: certified token attributions for a text classifier (noise at the embedding).

Token ids are integers, so noise cannot be added to them; ``noise_layer=model.embedding``
adds it to the embedding layer's output instead, and the certificate speaks about l2
perturbations of that output (``docs/certificates.rst``, section 11). We train a small
transformer on sentences built from VADER's human-rated words (the lexicon ships with the
``vaderSentiment`` package: ``pip install "captum-certified[text]"``), certify its top-3
tokens per sentence, draw them as coloured sentences with certified / abstained marks, and
attack the explanation with rating-preserving word substitutions that stay inside the
certified radius.
"""

import matplotlib.pyplot as plt
import torch
from captum.attr import LayerIntegratedGradients

from captum_certified.attr import CertifiedWrapper
from captum_certified.certify import FeatureCertifier
from captum_certified.text import layer_distance, sentiment_task, train_text_classifier
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize

# --- 1. a real offline task and a transformer trained in seconds --------------------------
task = sentiment_task()  # 16-word sentences: 2-4 rated words among neutral fillers
model = train_text_classifier(task, embedding_scale=0.01, weight_decay=0.3, embedding_noise=0.1)
with torch.no_grad():
    test_ids = task.encode(task.test_texts)
    accuracy = (model(test_ids).argmax(1) == task.test_labels).float().mean()
print(f"test accuracy: {accuracy:.3f} on {len(task.test_texts)} sentences")

# --- 2. certified top-3 tokens: LayerIntegratedGradients, noise at the embedding ----------
K, SIGMA, N = 3, 0.1, 512
per_token = Compose(TokenReduce("l2"), TopKBinarize(K))  # one score per token, then top-K
lig = LayerIntegratedGradients(model, model.embedding)
cw = CertifiedWrapper(lig, noise_layer=model.embedding, transform=per_token)
fw = CertifiedWrapper(
    lig, noise_layer=model.embedding, transform=per_token, certifier=FeatureCertifier()
)


def certify(ids, target, wrapper=cw):
    return wrapper.attribute(
        ids, target=target, nt_samples=N, nt_samples_batch_size=256, stdevs=SIGMA, n_steps=8,
        return_certificate=True, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip


# sentences with at least one rating-preserving substitute close in the embedding space
words = list(task.ratings)
vocab = task.tokenizer.index
weight = model.embedding.weight.detach()


def substitutes(word):
    """Words of the same sign rated within 0.5 of ``word``, nearest first."""
    r = task.ratings[word]
    same = [v for v in words if v != word and (task.ratings[v] > 0) == (r > 0)]
    close = [v for v in same if abs(task.ratings[v] - r) <= 0.5]
    return sorted(close, key=lambda v: float((weight[vocab[v]] - weight[vocab[word]]).norm()))


texts = [t for t in task.test_texts if any(w in task.ratings for w in t.split())][:40]
ids = task.encode(texts)
with torch.no_grad():
    target = model(ids).argmax(1)
maps, cert = certify(ids, target)
radius = cert.certified_radius(k=K, overlap=1 / 3)  # at least 1 of the top-3 stays
_, fcert = certify(ids, target, fw)
print(f"certified radius for >= 1 of the top-{K} tokens (median over {len(texts)}): "
      f"{radius.median():.3f}")  # fmt: skip

# --- 3. attack with substitutions inside the certified radius ------------------------------
rows = []
for i, text in enumerate(texts):
    tokens = text.split()
    top = set(maps[i].topk(K).indices.tolist())
    best = None
    for p, w in enumerate(tokens):
        if w not in task.ratings:
            continue
        for v in substitutes(w)[:4]:
            new = ids[i : i + 1].clone()
            new[0, p] = vocab[v]
            dist = float(layer_distance(model, model.embedding, ids[i : i + 1], new))
            if dist >= float(radius[i]):
                continue
            new_maps, _ = certify(new, target[i : i + 1])
            kept = len(top & set(new_maps[0].topk(K).indices.tolist())) / K
            if best is None or kept < best[0]:
                best = (kept, p, w, v, dist)
    if best is not None:
        rows.append((i, *best))
    if len(rows) == 3:
        break
print("sentence | substitution | distance | radius | certified overlap | attacked overlap")
for i, kept, p, w, v, dist in rows:
    certified = float(cert.topk_overlap(k=K, radius=dist)[i])
    print(f"{i:8d} | {w} -> {v} (word {p}) | {dist:.3f} | {float(radius[i]):.3f} | "
          f"{certified:.3f} | {kept:.3f}")  # fmt: skip
print(
    "attacked overlap >= certified overlap:",
    all(kept >= float(cert.topk_overlap(k=K, radius=d)[i]) for i, kept, _, _, _, d in rows),
)

# --- 4. coloured sentences: certified (+), abstained (?) at the substitution's radius -------
shown = [r[0] for r in rows] or [0, 1, 2]
fig, axes = plt.subplots(len(shown), 1, figsize=(11, 0.9 * len(shown) + 0.4))
axes = [axes] if len(shown) == 1 else list(axes)
for ax, i in zip(axes, shown):
    r = next((row[-1] for row in rows if row[0] == i), 0.0)
    decision = fcert.certified_map(radius=r)[i]
    x = 0.0
    line = []
    for t, word in enumerate(texts[i].split()):
        mark = {1: "+", -1: "", 0: "?"}[int(decision[t])]
        label = word + mark
        value = float(maps[i, t])
        ax.text(x, 0.5, label, fontsize=10, va="center", family="monospace",
                color="white" if value > 0.6 else "black",
                bbox={"facecolor": plt.cm.Reds(value), "pad": 2, "lw": 0})  # fmt: skip
        x += 0.0105 * (len(label) + 1)
        line.append(label)
    print(" ".join(line))
    ax.set_xlim(0, 1.05)
    ax.axis("off")
fig.suptitle("top-3 token frequency (red); + certified important, ? abstained")
fig.savefig("t6_certified_text.png", dpi=110, bbox_inches="tight")
