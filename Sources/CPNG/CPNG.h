// libpng (Debian libpng-dev): only the simplified read API (png_image_*), which reports errors in the png_image
// struct instead of longjmp, so Swift can call it directly. Only the Data module imports this.
#include <png.h>
