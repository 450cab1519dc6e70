// libjpeg-turbo (Debian libjpeg62-turbo-dev). libjpeg reports a fatal error by calling error_exit, which must not
// return; the only portable way out is longjmp, which Swift cannot do. So the whole decode is one static inline C
// function here: it decodes a JPEG in memory to 8-bit grayscale or RGB and returns 0, or returns -1 with libjpeg's
// message in `message`. Only the Data module imports this.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct dtrain_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf escape;
};

static void dtrain_jpeg_error_exit(j_common_ptr info) {
    struct dtrain_jpeg_error *error = (struct dtrain_jpeg_error *)info->err;
    longjmp(error->escape, 1);
}

static void dtrain_jpeg_silence(j_common_ptr info) { (void)info; }

// A warning (level -1: a truncated file, bytes out of place) means the file is damaged: fail like an error rather
// than return an image libjpeg has padded with gray.
static void dtrain_jpeg_emit(j_common_ptr info, int level) {
    if (level < 0) dtrain_jpeg_error_exit(info);
}

/// Decodes `size` bytes of JPEG into a malloc'ed (height, width, channels) buffer that the caller frees;
/// channels is 1 for grayscale files and 3 otherwise (CMYK and others are converted to RGB by libjpeg where it can).
/// Returns 0, or -1 with the reason in `message` (at least JMSG_LENGTH_MAX = 200 bytes).
static inline int dtrain_jpeg_decode(const unsigned char *data, unsigned long size, unsigned char **pixels,
                                     int *width, int *height, int *channels, char *message) {
    struct jpeg_decompress_struct info;
    struct dtrain_jpeg_error error;
    unsigned char *volatile out = NULL;
    *pixels = NULL;
    info.err = jpeg_std_error(&error.base);
    error.base.error_exit = dtrain_jpeg_error_exit;
    error.base.output_message = dtrain_jpeg_silence;
    error.base.emit_message = dtrain_jpeg_emit;
    if (setjmp(error.escape)) {
        error.base.format_message((j_common_ptr)&info, message);
        jpeg_destroy_decompress(&info);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, size);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&info);
    size_t stride = (size_t)info.output_width * (size_t)info.output_components;
    out = (unsigned char *)malloc(stride * info.output_height);
    if (out == NULL) {
        strcpy(message, "out of memory");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out + stride * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    *channels = info.output_components;
    *pixels = out;
    jpeg_destroy_decompress(&info);
    return 0;
}

/// Encodes (height, width, channels) bytes, channels 1 or 3, as a baseline JPEG of `quality` (1…100) into a
/// malloc'ed buffer the caller frees. Returns 0, or -1 with the reason in `message`. For tests and tools.
static inline int dtrain_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                                     unsigned char **jpeg, unsigned long *size, char *message) {
    struct jpeg_compress_struct info;
    struct dtrain_jpeg_error error;
    *jpeg = NULL;
    *size = 0;
    info.err = jpeg_std_error(&error.base);
    error.base.error_exit = dtrain_jpeg_error_exit;
    error.base.output_message = dtrain_jpeg_silence;
    if (setjmp(error.escape)) {
        error.base.format_message((j_common_ptr)&info, message);
        jpeg_destroy_compress(&info);
        return -1;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, jpeg, size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    size_t stride = (size_t)width * (size_t)channels;
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * info.next_scanline);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    return 0;
}
