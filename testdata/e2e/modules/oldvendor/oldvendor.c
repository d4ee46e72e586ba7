#include <linux/module.h>
#include <linux/init.h>
#include <linux/version.h>

/* Like an old vendor driver: it builds on the kernels it was written for. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(@FAIL_FROM@)
#error "oldvendor does not support this kernel"
#endif

static int __init oldvendor_init(void) { return 0; }
static void __exit oldvendor_exit(void) { }
module_init(oldvendor_init);
module_exit(oldvendor_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
