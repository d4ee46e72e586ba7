#include <linux/module.h>
#include <linux/init.h>
#include <linux/version.h>

/* A regression of version 2.0: it no longer builds on new kernels. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(@FAIL_FROM@)
#error "wifi does not support this kernel"
#endif

static int __init wifi_init(void) { return 0; }
static void __exit wifi_exit(void) { }
module_init(wifi_init);
module_exit(wifi_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
