/* JPEG decoding through the system's libjpeg-turbo (libjpeg API), with the
 * DCT scaling (1/2, 1/4, 1/8) that lets a large photo be decoded at the
 * resolution its crop needs. libjpeg reports errors by calling error_exit,
 * which by default ends the process: here it jumps back and the message is
 * returned to Rust instead. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

struct error_manager {
    struct jpeg_error_mgr public_fields;
    jmp_buf jump;
    char *message;
    size_t message_len;
};

static void jump_back(j_common_ptr info) {
    struct error_manager *errors = (struct error_manager *)info->err;
    char buffer[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, buffer);
    snprintf(errors->message, errors->message_len, "%s", buffer);
    longjmp(errors->jump, 1);
}

/* Warnings are ignored (as PIL does), except running out of data: libjpeg
 * would pad a truncated file with grey, and a damaged data set should not
 * train silently. */
static void fail_on_truncation(j_common_ptr info, int level) {
    if (level == -1 && info->err->msg_code == JWRN_JPEG_EOF) {
        jump_back(info);
    }
}

/* Reads the header of `data` and, when `out` is not NULL, decodes the image
 * as RGB at 1/`denominator` scale into `out` (`capacity` bytes). Always
 * writes the output size (at that scale) to `width` and `height`.
 * Returns 0, or -1 with `message` filled. */
int selfsup_jpeg_decode(const uint8_t *data, size_t len, int denominator, uint8_t *out,
                        size_t capacity, int *width, int *height, char *message,
                        size_t message_len) {
    struct jpeg_decompress_struct info;
    struct error_manager errors;
    info.err = jpeg_std_error(&errors.public_fields);
    errors.public_fields.error_exit = jump_back;
    errors.public_fields.emit_message = fail_on_truncation;
    errors.message = message;
    errors.message_len = message_len;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)len);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    info.scale_num = 1;
    info.scale_denom = (unsigned int)denominator;
    jpeg_calc_output_dimensions(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    if (out == NULL) {
        jpeg_destroy_decompress(&info);
        return 0;
    }
    size_t stride = (size_t)info.output_width * 3;
    if (capacity < stride * info.output_height) {
        snprintf(message, message_len, "output buffer too small");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_start_decompress(&info);
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out + (size_t)info.output_scanline * stride;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    return 0;
}
