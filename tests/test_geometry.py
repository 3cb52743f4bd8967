"""The geometry module against brute force: output sizes, "same" pads, which taps land inside."""
import itertools

import naive
from poolnd import _geometry


def test_output_size_equals_brute_force_count():
    for L, k, s, d, b, a, ceil in itertools.product(range(1, 9), range(1, 5), range(1, 4),
                                                    range(1, 3), range(3), range(3),
                                                    (False, True)):
        # the formula may go below zero where no window fits; the count stops at zero
        assert max(_geometry.output_size(L, k, s, d, b, a, ceil), 0) == \
            naive.count_windows(L, k, s, d, b, a, ceil), (L, k, s, d, b, a, ceil)


def test_same_pads_match_tensorflow_rule():
    for L, k, s, d in itertools.product(range(1, 12), range(1, 5), range(1, 5), range(1, 3)):
        for lower in (False, True):
            assert _geometry.same_pads(L, k, s, d, lower) == naive.same_pads(L, k, s, d, lower)


def test_tap_slices_visit_exactly_the_inside_taps():
    for L, k, s, d, b, a, ceil in itertools.product(range(1, 7), range(1, 4), range(1, 3),
                                                    range(1, 3), range(3), range(3),
                                                    (False, True)):
        g = _geometry.windows((L,), (k,), (s,), (d,), ((b, a),), ceil)
        if g.out_size[0] < 1:
            continue
        seen = set()
        for t, (osl,), (isl,) in g.tap_slices():
            outs = range(g.out_size[0])[osl]
            ins = range(L)[isl]
            assert len(outs) == len(ins)
            seen |= {(o, t, i) for o, i in zip(outs, ins)}
        brute = {(o, j, o * s - b + j * d) for o in range(g.out_size[0]) for j in range(k)
                 if 0 <= o * s - b + j * d < L}
        assert seen == brute
