"""Draw the README's pictures from a real run: ``python docs/make_readme_figures.py``.

Writes ``docs/digits_reconstructions.png`` (held-out digits over their reconstructions
by the classic model) and prints the held-out FVU table of PCA and the autoencoder at
several code sizes on digits, in the README's Markdown format.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from lucidae import AutoEncoder  # noqa: E402
from lucidae.datasets import load_digits  # noqa: E402
from lucidae.metrics import fvu  # noqa: E402

HERE = Path(__file__).parent


def main() -> None:
    ds = load_digits()
    X_train, X_test = train_test_split(ds.X, test_size=0.2, random_state=0)
    rows = []
    models = {}
    for k in (2, 4, 8, 16, 32):
        pca = PCA(k, random_state=0).fit(X_train)
        ae = AutoEncoder(latent_dim=k, random_state=0, verbose=0).fit(X_train)
        lin = AutoEncoder(latent_dim=k, latent_activation="linear", random_state=0, verbose=0).fit(X_train)
        models[k] = ae
        rows.append(
            (
                k,
                fvu(X_test, pca.inverse_transform(pca.transform(X_test))),
                fvu(X_test, ae.reconstruct(X_test)),
                fvu(X_test, lin.reconstruct(X_test)),
            )
        )
    print("| code size | PCA | AutoEncoder (defaults) | AutoEncoder, linear code |")
    print("|---:|---:|---:|---:|")
    for k, p, a, lin in rows:
        print(f"| {k} | {p:.3f} | {a:.3f} | {lin:.3f} |")

    n = 12
    rows_img = [
        ("held-out", X_test[:n]),
        ("code 32", models[32].reconstruct(X_test[:n])),
        ("code 8", models[8].reconstruct(X_test[:n])),
    ]
    fig, axes = plt.subplots(len(rows_img), n, figsize=(n * 0.62 + 0.9, len(rows_img) * 0.7))
    fig.subplots_adjust(left=0.1, right=0.995, top=0.995, bottom=0.005, wspace=0.06, hspace=0.06)
    for r, (label, images) in enumerate(rows_img):
        axes[r, 0].text(-1.0, 3.5, label, ha="right", va="center", fontsize=8)
        for i in range(n):
            axes[r, i].imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[r, i].set_axis_off()
    out = HERE / "digits_reconstructions.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
