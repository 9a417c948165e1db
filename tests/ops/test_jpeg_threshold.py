"""bench.jpeg_threshold: the quality from which the clean model is at least as good at every higher quality."""

from bench.jpeg_threshold import qualities, threshold


def test_it_reads_a_quality_range_with_its_step():
    assert qualities("50-100:5") == list(range(50, 101, 5)) and qualities("75") == [75]


def test_the_threshold_is_where_the_clean_model_stays_ahead():
    means = {
        q: (30.0, clean, jpeg)
        for q, clean, jpeg in [
            (50, 28.0, 29.0),
            (80, 30.2, 31.0),
            (85, 31.0, 30.9),
            (90, 31.7, 31.9),
            (95, 32.9, 32.3),
            (100, 33.8, 32.5),
        ]
    }
    assert threshold(means) == 95  # clean ahead at 85 too, but not again at 90: 95 and above only


def test_a_jpeg_aware_model_better_everywhere_means_always_jpeg_aware_for_lossy_files():
    assert threshold({90: (30.0, 31.0, 31.5), 100: (30.0, 33.0, 33.1)}) == 101
