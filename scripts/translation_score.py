#!/usr/bin/env python3
"""sacrebleu's corpus BLEU and chrF of translations written by `lstm-gpu train --task translate
--translations PREFIX` (or the translator example): PREFIX.hyp against PREFIX.ref, one sentence
a line. Also prints lstm-gpu's own chrF of the same files when given it (--ours), to compare.

  python3 -m pip install sacrebleu        # in a venv; not a dependency of the package
  scripts/translation_score.py runs/bible
"""
import argparse, sys

try:
    import sacrebleu
except ImportError:
    sys.exit("translation_score.py needs sacrebleu: python3 -m pip install sacrebleu")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix", help="PREFIX of PREFIX.hyp and PREFIX.ref")
    ap.add_argument("--ours", type=float, help="lstm-gpu's chrF of the same files, printed beside sacrebleu's")
    a = ap.parse_args()
    with open(a.prefix + ".hyp", encoding="utf-8") as f:
        hyp = f.read().split("\n")[:-1]
    with open(a.prefix + ".ref", encoding="utf-8") as f:
        ref = f.read().split("\n")[:-1]
    if len(hyp) != len(ref):
        sys.exit(f"{a.prefix}.hyp has {len(hyp)} lines but {a.prefix}.ref has {len(ref)}")
    bleu = sacrebleu.corpus_bleu(hyp, [ref])
    chrf = sacrebleu.corpus_chrf(hyp, [ref])
    print(f"{len(hyp)} sentences")
    print(f"BLEU {bleu.score:.2f}  ({bleu})")
    print(f"chrF {chrf.score:.2f}  ({chrf})")
    if a.ours is not None:
        print(f"lstm-gpu chrF {a.ours:.2f}, difference {abs(a.ours - chrf.score):.2e}")


if __name__ == "__main__":
    main()
