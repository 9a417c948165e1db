"""The command line: upscale (file and folder mode) and evaluate (the EDSR paper's protocol)."""

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.engine.conftest import SET5, encode, gradient
from upscale_worker import evaluate
from upscale_worker.cli import main


def test_it_upscales_one_file_in_the_format_of_the_output_suffix(tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(encode(gradient(20, 10)))
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "in.png"),
                str(tmp_path / "out.jpg"),
                "--scale",
                "2",
                "--precision",
                "f32",
                "--tile",
                "48",
                "--keep-metadata",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    assert "20x10 ->" in capsys.readouterr().out


def test_it_upscales_a_folder_and_reports_the_files_it_could_not_read(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(encode(gradient(12, 8)))
    (src / "b.jpg").write_bytes(encode(gradient(8, 12), "JPEG"))
    (src / "broken.png").write_bytes(b"<html>")
    assert main(["upscale", str(src), str(tmp_path / "out"), "--scale", "2", "--format", "webp"]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.webp", "b.webp"]
    out = capsys.readouterr()
    assert (
        "error: broken.png: This is not a PNG, JPEG, WebP, HEIC, AVIF, TIFF, BMP or GIF image." in out.err
        and "2 of 3 images" in out.out
    )


def test_it_upscales_the_tiffs_and_heics_of_a_folder(tmp_path, capsys):
    import io

    import pillow_heif  # the encoder, a test dependency

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "scan.tif"), gradient(12, 8))
    heic = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(gradient(8, 12))).save(heic, quality=90)
    (src / "phone.HEIC").write_bytes(heic.getvalue())
    assert main(["upscale", str(src), str(tmp_path / "out"), "--scale", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["phone.png", "scan.png"]
    assert Image.open(tmp_path / "out" / "phone.png").size == (16, 24)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.png", "out.png"], "does not exist"),
        (["in.png", "out.bmp"], "Cannot tell the output format"),
        (["in.png", "out.png", "--scale", "4"], "x4 is not available yet"),
        (["in.png", "out.png", "--tile", "16"], "The tile must be larger than 16 pixels"),
    ],
)
def test_it_explains_errors_in_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.png").write_bytes(encode(gradient(8, 8)))
    assert main(["upscale", *args, *(["--scale", "2"] if "--scale" not in args else [])]) == 1
    assert message in capsys.readouterr().err


def test_evaluate_reads_hr_images_from_the_folder_or_its_hr_subfolder(tmp_path):
    for folder in (tmp_path / "flat", tmp_path / "nested" / "HR"):
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "a.png"), gradient(30, 20))
    assert [r.image for r in evaluate.evaluate(tmp_path / "flat", 2)] == ["a"]
    assert [r.image for r in evaluate.evaluate(tmp_path / "nested", 2)] == ["a"]


@pytest.mark.skipif(not SET5.is_dir(), reason="needs the shared Set5 benchmark")
def test_evaluate_reproduces_the_papers_bicubic_x4_on_set5(capsys):
    assert main(["evaluate", "--scale", "4", str(SET5)]) == 0  # no x4 model here: bicubic alone
    out = capsys.readouterr().out
    mean = next(line for line in out.splitlines() if line.startswith("mean"))
    assert abs(float(mean.split()[1]) - 28.42) <= 0.02


@pytest.mark.skipif(not SET5.is_dir(), reason="needs the shared Set5 benchmark")
def test_evaluate_scores_the_model_beside_bicubic():
    rows = evaluate.evaluate(SET5, 2)
    assert len(rows) == 5 and all(np.isfinite(r.psnr) and 0 < r.ssim <= 1 for r in rows)


@pytest.mark.parametrize(
    ("quality", "source", "model"),
    [
        (60, "auto", "edsr_baseline_x2_jpeg"),
        (60, "clean", "edsr_baseline_x2"),
        (98, "compressed", "edsr_baseline_x2_jpeg"),
    ],
)
def test_the_source_option_chooses_the_model(tmp_path, capsys, quality, source, model):
    (tmp_path / "in.jpg").write_bytes(encode(gradient(20, 12), "JPEG", quality=quality))
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "in.jpg"),
                str(tmp_path / "out.png"),
                "--scale",
                "2",
                "--source",
                source,
            ]
        )
        == 0
    )
    assert f"({model}; " in capsys.readouterr().out


@pytest.mark.skipif(not SET5.is_dir(), reason="needs the shared Set5 benchmark")
def test_evaluate_jpeg_prints_bicubic_and_both_models_per_quality(capsys):
    assert main(["evaluate", "--scale", "2", "--jpeg", "75,90", str(SET5)]) == 0
    out = capsys.readouterr().out
    assert "JPEG quality 75:" in out and "JPEG quality 90:" in out
    summary = [line.split() for line in out.splitlines() if line.startswith(("75 ", "90 "))]
    assert len(summary) == 2 and all(len(cells) == 6 and "-" not in cells for cells in summary)
    assert float(summary[0][1]) < float(
        summary[1][1]
    )  # bicubic gains with quality: the LR really was compressed


@pytest.mark.skipif(not SET5.is_dir(), reason="needs the shared Set5 benchmark")
def test_evaluate_jpeg_without_models_for_the_scale_scores_bicubic(capsys):
    assert main(["evaluate", "--scale", "4", "--jpeg", "75", str(SET5)]) == 0  # no x4 model here
    out = capsys.readouterr()
    assert "no clean model" in out.err or "no JPEG-aware model" in out.err
    mean = next(line for line in out.out.splitlines() if line.startswith("mean"))
    assert 27.0 < float(mean.split()[1]) < 28.42  # below the clean LR's bicubic 28.42: JPEG lost detail


def test_folder_mode_gives_each_input_its_own_output(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "photo.png").write_bytes(encode(gradient(12, 8)))
    (src / "photo.jpg").write_bytes(encode(gradient(8, 12), "JPEG"))
    (src / "other.png").write_bytes(encode(gradient(8, 8)))
    assert main(["upscale", str(src), str(tmp_path / "out"), "--scale", "2"]) == 0
    outputs = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert outputs == {"photo.png.png": (24, 16), "photo.jpg.png": (16, 24), "other.png": (16, 16)}
    assert "3 of 3 images" in capsys.readouterr().out


def test_it_never_overwrites_an_output_silently(tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(encode(gradient(12, 8)))
    (tmp_path / "out.png").write_bytes(b"mine")
    assert main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--scale", "2"]) == 1
    assert (
        "exists; use --overwrite" in capsys.readouterr().err
        and (tmp_path / "out.png").read_bytes() == b"mine"
    )
    assert (
        main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--scale", "2", "--overwrite"])
        == 0
    )
    assert Image.open(tmp_path / "out.png").size == (24, 16)


def header_only_png(width: int, height: int) -> bytes:
    from tests.platform.hostile import png_bomb

    return png_bomb(width, height)


def animated_gif() -> bytes:
    import io

    buf = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "output", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 60, "out.png", "The file is damaged or not a valid PNG image."),
        (header_only_png(12000, 12000), "out.png", "(144.0 megapixels); the limit is 16 megapixels."),
        (header_only_png(20000, 20000), "out.png", "far more pixels than the limit of 16 megapixels."),
        (header_only_png(8200, 1), "out.webp", "WebP output cannot exceed 16383 pixels a side"),
        (animated_gif(), "out.png", "Animated images are not supported (this one has 2 frames)."),
    ],
)
def test_it_refuses_with_one_line_before_any_work(tmp_path, capsys, monkeypatch, data, output, message):
    monkeypatch.delenv("MAX_INPUT_MEGAPIXELS", raising=False)
    (tmp_path / "in.img").write_bytes(data)
    assert main(["upscale", str(tmp_path / "in.img"), str(tmp_path / output), "--scale", "2"]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / output).exists()


def test_it_applies_the_sites_limits_from_the_environment_unless_lifted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MAX_INPUT_MEGAPIXELS", "0.0001")
    (tmp_path / "in.png").write_bytes(encode(gradient(20, 10)))
    assert main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--scale", "2"]) == 1
    assert "the limit is 0.0001 megapixels" in capsys.readouterr().err
    assert (
        main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--scale", "2", "--no-limits"])
        == 0
    )


def test_a_jpeg_format_limit_names_the_largest_scale_that_fits(tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(header_only_png(32751, 1))
    assert (
        main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.jpg"), "--scale", "2", "--no-limits"])
        == 1
    )
    assert (
        "JPEG output cannot exceed 65500 pixels a side (32751x1 at x2 would be 65502x2). No scale fits"
        in capsys.readouterr().err
    )


def test_a_width_gives_exactly_that_width_with_the_smallest_scale(tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(encode(gradient(40, 30)))
    assert main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--width", "70"]) == 0
    assert Image.open(tmp_path / "out.png").size == (70, 53)  # 52.5 rounded half up
    assert "40x30 -> " in (out := capsys.readouterr().out) and "70x53 (x2 then resized" in out


def test_a_print_size_at_a_dpi_gives_its_pixels_and_density(tmp_path):
    (tmp_path / "in.png").write_bytes(encode(gradient(30, 40), dpi=(72, 72)))
    args = ["--long-side", "0.25in", "--dpi", "300", "--format", "jpeg"]  # 75 pixels at 300 DPI
    assert main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.jpg"), *args]) == 0
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.size == (56, 75) and tuple(round(v) for v in im.info["dpi"]) == (300, 300)


def test_a_folder_gets_the_target_for_each_picture(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "wide.png").write_bytes(encode(gradient(40, 20)))
    (src / "tall.png").write_bytes(encode(gradient(20, 40)))
    assert main(["upscale", str(src), str(tmp_path / "out"), "--long-side", "60"]) == 0
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert sizes == {"wide.png": (60, 30), "tall.png": (30, 60)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--width", "40"], "The picture is already 40 pixels on that side"),
        (
            ["--width", "100"],
            "100 pixels wide cannot be made: x2 of this 40x30 picture reaches 80 pixels. "
            "The largest target that fits is 80 pixels wide.",
        ),
        (["--width", "70", "--scale", "2"], "Give --scale or a target size, not both"),
        (["--width", "3cm"], "needs a DPI"),
        (["--scale", "2", "--dpi", "300"], "--dpi goes with a target size"),
        (["--height", "wide"], "is not a length"),
    ],
)
def test_a_target_it_cannot_make_is_refused_in_one_line(tmp_path, capsys, args, message):
    (tmp_path / "in.png").write_bytes(encode(gradient(40, 30)))
    assert main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_it_runs_the_network_asked_for_and_refuses_a_scale_it_lacks_in_one_line(
    with_rlfn, tmp_path, capsys, monkeypatch
):
    from upscale_worker.engine import models

    (tmp_path / "in.png").write_bytes(encode(gradient(30, 24)))
    args = ["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--network", "rlfn"]
    assert main([*args, "--scale", "2"]) == 0
    assert "in.png 30x24 ->" in (said := capsys.readouterr().out) and "(rlfn_x2;" in said
    scales = {None: [2, 3], "edsr": [2, 3], "rlfn": [2]}  # as if EDSR x3 were installed
    monkeypatch.setattr(models, "available_scales", lambda folder=None, network=None: scales[network])
    (tmp_path / "out.png").unlink()
    assert main([*args, "--scale", "3"]) == 1
    assert capsys.readouterr().err == "error: RLFN has no x3 model; choose x2, or the EDSR network.\n"
    assert not (tmp_path / "out.png").exists()  # refused, never run on EDSR instead


def test_a_tif_output_suffix_writes_a_tiff(tmp_path):
    (tmp_path / "in.png").write_bytes(encode(gradient(20, 10)))
    args = [
        "upscale",
        str(tmp_path / "in.png"),
        str(tmp_path / "out.tif"),
        "--scale",
        "2",
        "--precision",
        "f32",
    ]
    assert main(args) == 0
    with Image.open(tmp_path / "out.tif") as im:
        assert im.format == "TIFF" and im.size == (40, 20)


@pytest.mark.parametrize("head", [b"\xff\x0a\xfa\x7f", b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "])
def test_a_jpeg_xl_file_is_refused_by_name(tmp_path, capsys, head):
    """A bare JPEG XL codestream and its container (ISO/IEC 18181-2): named, with what to save it as."""
    (tmp_path / "in.jxl").write_bytes(head + bytes(64))
    assert main(["upscale", str(tmp_path / "in.jxl"), str(tmp_path / "out.png"), "--scale", "2"]) == 1
    assert "JPEG XL is not supported yet; save it as PNG, JPEG, WebP" in capsys.readouterr().err
