#include <linux/module.h>
#include <linux/init.h>

/* A module whose working versions (1.0, 3.0) must not be lost when the
 * next one (keepmod-fails) does not build. modinfo shows which one it is. */
static int __init keepmod_init(void) { return 0; }
static void __exit keepmod_exit(void) { }
module_init(keepmod_init);
module_exit(keepmod_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("@VERSION@");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
